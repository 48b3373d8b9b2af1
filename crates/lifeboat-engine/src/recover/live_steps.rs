//! A live recovery's steps: commands, restores over the real targets (through the restore
//! job, safety copy included), checks of the live targets, waits, HTTP probes, notifications.

use std::time::Duration;

use super::*;
use crate::{
    kinds::kind_for,
    proof::{run_limited, tail},
};

impl Run<'_> {
    pub(super) fn live_step(
        &mut self,
        index: usize,
        step: &Step,
        ui: &mut dyn RecoverUi,
    ) -> Outcome {
        match step {
            Step::Run { run, timeout } => {
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c")
                    .arg(run)
                    .current_dir(&self.engine.plan().base_dir);
                match run_limited(cmd, *timeout, "the step's timeout") {
                    Ok(out) => {
                        let out = tail(&out);
                        done(if out.is_empty() {
                            "exited 0".to_owned()
                        } else {
                            format!("exited 0: {out}")
                        })
                    }
                    Err(e) => failed(tail(&e.to_string())),
                }
            }
            Step::Restore {
                asset,
                snapshot,
                before,
                time,
                to,
                tables,
                from,
            } => {
                if to.is_none()
                    && !self.req.yes
                    && !ui.ask(&format!(
                        "Restore {asset} over its live target now? A safety snapshot of it is taken first."
                    ))
                {
                    return failed("not confirmed by the operator");
                }
                self.live_restore(index, asset, (snapshot, before, time), to, tables, from)
            }
            Step::Check { asset } => self.live_check(asset),
            Step::Http { .. } => http_step(step),
            Step::Wait {
                until,
                timeout,
                interval,
            } => self.wait_step(until, *timeout, *interval),
            Step::Confirm { prompt } => {
                if self.req.yes {
                    self.follow_up.push(format!(
                        "{prompt} (not confirmed: the recovery ran with --yes)"
                    ));
                    return (
                        StepStatus::Skipped,
                        "not asked (--yes); listed under follow-up items".into(),
                    );
                }
                if ui.ask(&format!("{prompt}\n  Done?")) {
                    done("confirmed by the operator")
                } else {
                    failed("not confirmed by the operator")
                }
            }
            Step::Notify { message, target } => self.notify_step(message, target.as_deref()),
        }
    }

    fn live_restore(
        &mut self,
        index: usize,
        asset: &str,
        (snapshot, before, time): (&Option<String>, &Option<String>, &Option<String>),
        to: &Option<String>,
        tables: &[String],
        from: &Option<String>,
    ) -> Outcome {
        let started = Timestamp::now();
        let (snapshot, before) = match choice_now(asset, snapshot.as_ref(), before.as_ref()) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let recovery = match recovery_now(asset, time.as_ref()) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let req = RestoreRequest {
            asset: asset.to_owned(),
            snapshot,
            before,
            to: to.as_ref().map(PathBuf::from),
            dry_run: false,
            yes: true,
            skip_safety_snapshot: false,
            tables: tables.to_vec(),
            repository: from.clone(),
            recovery,
            delta: false,
        };
        let rollback = |id: &str| {
            let args = format!("restore {asset} --snapshot {} --yes", short(id));
            match from {
                Some(r) => self.engine.command_line(&format!("--repo {r} {args}")),
                None => self.engine.command_line(&args),
            }
        };
        match self.engine.restore(&req) {
            Ok(r) => {
                let data_age = seconds_between(r.snapshot_time, started);
                let kept = r
                    .kept_database
                    .clone()
                    .or_else(|| r.kept.as_ref().map(|p| p.display().to_string()));
                let mut detail = format!(
                    "snapshot {} of {} (data age {})",
                    short(&r.snapshot),
                    r.snapshot_time.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    crate::human_secs(data_age as f64)
                );
                if let Some(d) = &r.damaged {
                    detail.push_str(&format!("; {}", d.line()));
                } else if let Some(s) = &r.safety_snapshot {
                    detail.push_str(&format!("; safety snapshot {}", short(s)));
                }
                if let Some(k) = &kept {
                    detail.push_str(&format!("; previous data kept as {k}"));
                }
                if let Some(n) = r.keys {
                    detail.push_str(&format!("; {n} keys written"));
                }
                if let Some(to) = &r.recovered_to {
                    detail.push_str(&format!("; recovered: {to}"));
                }
                if let Some(t) = &r.tables {
                    detail.push_str(&format!(
                        "; {} table(s), {} rows",
                        t.len(),
                        t.values().sum::<u64>()
                    ));
                }
                let plan_asset = self.engine.plan().asset(asset);
                self.restored.push(RestoredAsset {
                    asset: asset.to_owned(),
                    step: index,
                    repository: from.clone(),
                    snapshot: r.snapshot.clone(),
                    snapshot_time: r.snapshot_time,
                    data_age_secs: data_age,
                    rpo_target_secs: plan_asset.map_or(0, |a| a.rpo.as_secs()),
                    target: to
                        .as_deref()
                        .map_or_else(|| "live".to_owned(), lifeboat_core::redact_url),
                    rollback: r.safety_snapshot.as_deref().map(rollback),
                    safety_snapshot: r.safety_snapshot.as_deref().map(|s| short(s).to_owned()),
                    kept,
                    damaged: r.damaged.clone(),
                });
                done(detail)
            }
            Err(e) => {
                // The restore may have taken its safety snapshot before it failed: name it.
                let mut detail = with_hint(&e);
                if let Some(id) = self.safety_since(asset, from.as_deref(), started) {
                    detail.push_str(&format!(
                        " (a safety snapshot {} was taken first; to undo anything: `{}`)",
                        short(&id),
                        rollback(&id)
                    ));
                }
                failed(detail)
            }
        }
    }

    /// A safety snapshot of `asset` taken at or after `since`.
    fn safety_since(&self, asset: &str, from: Option<&str>, since: Timestamp) -> Option<String> {
        let repo = self.engine.open_named_or_primary(from).ok()?;
        repo.snapshots()
            .ok()?
            .into_iter()
            .rev()
            .find(|s| {
                s.asset.as_deref() == Some(asset)
                    && s.is_safety()
                    && s.time.as_second() >= since.as_second()
            })
            .map(|s| s.id)
    }

    fn live_check(&self, asset: &str) -> Outcome {
        let Some(a) = self.engine.plan().asset(asset) else {
            return failed(format!("unknown asset {asset}"));
        };
        // Compared with the snapshot this recovery restored in place; otherwise with the
        // newest one, where a difference is only news (the data moved on since).
        let restored = self
            .restored
            .iter()
            .rev()
            .find(|r| r.asset == asset && r.target == "live");
        let baseline = (|| {
            let repo = self
                .engine
                .open_named_or_primary(restored.and_then(|r| r.repository.as_deref()))
                .ok()?;
            let snap = match restored {
                Some(r) => repo.find_snapshot(asset, Some(&r.snapshot)).ok()?,
                None => repo
                    .snapshots()
                    .ok()?
                    .into_iter()
                    .rev()
                    .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())?,
            };
            let manifest = repo.read_manifest(&snap).ok()?;
            Some((snap.short_id, manifest))
        })();
        let manifest = baseline.as_ref().map(|(_, m)| m);
        let found = match kind_for(a).inspect_live(manifest, &self.engine.plan().base_dir) {
            Ok(f) => f,
            Err(e) => return failed(with_hint(&e)),
        };
        let strict = restored.is_some();
        let problems = found.problems(strict);
        if !problems.is_empty() {
            return failed(problems.join("; "));
        }
        let mut detail = match (&found.compared, &found.difference, &baseline) {
            (Some(c), _, Some((id, _))) => format!("{c} in snapshot {id}"),
            (None, Some(d), Some((id, _))) => {
                format!("changed since snapshot {id} (not restored in this run): {d}")
            }
            _ => "no snapshot to compare with".to_owned(),
        };
        let passed = found.checks.iter().filter(|c| c.ok).count();
        detail.push_str(&format!("; {passed} check(s) passed"));
        done(detail)
    }

    fn wait_step(&self, until: &str, timeout: Duration, interval: Duration) -> Outcome {
        let started = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            let left = timeout.saturating_sub(started.elapsed());
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c")
                .arg(until)
                .current_dir(&self.engine.plan().base_dir);
            let last = match run_limited(
                cmd,
                Some(left.max(Duration::from_secs(1))),
                "the step's timeout",
            ) {
                Ok(_) => return done(format!("true after {tries} tr{}", plural_y(tries))),
                Err(e) => tail(&e.to_string()),
            };
            if started.elapsed() + interval > timeout || crate::interrupted() {
                return failed(format!(
                    "still false after {} ({tries} tries): {last}",
                    humantime::format_duration(timeout)
                ));
            }
            std::thread::sleep(interval);
        }
    }

    /// Sends the message to the notifier named (every one when none is). A notification
    /// that cannot be delivered does not stop a recovery: the step says so, and telling
    /// people by hand becomes a follow-up item.
    fn notify_step(&mut self, message: &str, target: Option<&str>) -> Outcome {
        let notifiers = crate::notify::Notifiers::from_plan(self.engine.plan());
        let names: Vec<String> = match target {
            Some(t) => vec![t.to_owned()],
            None => self
                .engine
                .plan()
                .notify
                .iter()
                .map(|n| n.name.clone())
                .collect(),
        };
        if names.is_empty() {
            self.follow_up.push(format!(
                "Tell the people concerned: {message} (the plan has no notifier)"
            ));
            return (
                StepStatus::Skipped,
                "the plan has no notifier; listed under follow-up items".into(),
            );
        }
        let mut sent = Vec::new();
        let mut failed_to = Vec::new();
        for name in &names {
            match notifiers.send_message(name, message) {
                Ok(_) => sent.push(name.as_str()),
                Err(e) => failed_to.push(match e.hint() {
                    Some(h) => format!("{e} (hint: {h})"),
                    None => e.to_string(),
                }),
            }
        }
        if failed_to.is_empty() {
            return done(format!("sent to {}", sent.join(", ")));
        }
        self.follow_up.push(format!(
            "Tell the people concerned by hand: {message} (not delivered: {})",
            failed_to.join("; ")
        ));
        let mut detail = format!("NOT delivered: {}", failed_to.join("; "));
        if !sent.is_empty() {
            detail.push_str(&format!("; sent to {}", sent.join(", ")));
        }
        detail.push_str(" (the recovery goes on; listed under follow-up items)");
        done(detail)
    }
}

fn plural_y(n: u32) -> &'static str {
    if n == 1 { "y" } else { "ies" }
}

/// GETs `url` until it answers `expect` (and contains `body`), `retries` more times at most.
fn http_step(step: &Step) -> Outcome {
    let Step::Http {
        url,
        method,
        headers,
        bearer,
        data,
        expect,
        body,
        retries,
        interval,
    } = step
    else {
        return failed("not an http step");
    };
    let (expect, retries) = (*expect, *retries);
    let token = match bearer.as_ref().map(crate::secrets::read_secret).transpose() {
        Ok(t) => t,
        Err(e) => return failed(format!("read the bearer token: {e}")),
    };
    // Whatever the server says back is shown without the token, should it echo it.
    let masked = |text: &str| match &token {
        Some(t) if !t.expose().is_empty() => text.replace(t.expose(), "***"),
        _ => text.to_owned(),
    };
    let client = match reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("start an HTTP client: {e}")),
    };
    let Ok(verb) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return failed(format!("unknown HTTP method {method}"));
    };
    let mut last = String::new();
    for attempt in 1..=retries.saturating_add(1) {
        let mut request = client.request(verb.clone(), url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(t) = &token {
            request = request.bearer_auth(t.expose());
        }
        if let Some(d) = data {
            request = request.body(d.clone());
        }
        match request.send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().unwrap_or_default();
                let body_ok = body.as_deref().is_none_or(|b| text.contains(b));
                if status == expect && body_ok {
                    return done(format!(
                        "answered {status} after {attempt} tr{}",
                        plural_y(attempt)
                    ));
                }
                last = if status == expect {
                    format!(
                        "answered {status} without {:?} in its body",
                        body.as_deref().unwrap_or("")
                    )
                } else {
                    format!("answered {status}: {}", tail(&masked(&text)))
                };
            }
            // The error names the URL; a URL in a plan holds no secret (secrets live in *-env).
            Err(e) => last = masked(&e.to_string()),
        }
        if attempt <= retries && !crate::interrupted() {
            std::thread::sleep(interval.to_owned());
        }
    }
    failed(format!(
        "{method} {url} {last} (after {} tr{})",
        retries + 1,
        plural_y(retries + 1)
    ))
}
