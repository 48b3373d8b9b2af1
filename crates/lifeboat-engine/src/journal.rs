//! After a job: its runs into the catalog, its events to the notifiers (and the catalog), and
//! one line in the audit log. The CLI and the daemon call the same functions, so a backup run
//! from cron notifies exactly as one run by the daemon.
//!
//! Nothing here fails the job it records: a catalog or audit log that cannot be written and a
//! notification that cannot be delivered are warnings.

use jiff::Timestamp;
use lifeboat_plan::NotifyEvent;

use crate::{
    BackupReport, DrillReport, EngineError, FindingKind, Level, VerifyReport,
    catalog::{EventRecord, Run, RunOutcome},
    engine::Engine,
    notify::{Delivery, Event, Notifiers},
    verify::human_bytes,
};

/// Seconds since `started`, as a run's duration.
fn since(started: Timestamp) -> f64 {
    (Timestamp::now().as_millisecond() - started.as_millisecond()).max(0) as f64 / 1000.0
}

impl Engine {
    /// The plan's notifiers.
    #[must_use]
    pub fn notifiers(&self) -> Notifiers {
        Notifiers::from_plan(self.plan())
    }

    /// Tells the notifiers that wait for it (Healthchecks `/start`) that `job` begins.
    pub fn job_started(&self, job: &str, asset: Option<&str>) {
        let n = self.notifiers();
        if !n.is_empty() {
            n.started(job, asset);
        }
    }

    /// Keeps `event` in the catalog and sends it to every notifier whose `on` names it.
    pub fn raise(&self, event: &Event) -> Vec<Delivery> {
        let record = EventRecord {
            time: event.time,
            kind: event.kind.as_str().to_owned(),
            job: event.job.clone(),
            asset: event.asset.clone(),
            summary: event.summary.clone(),
        };
        if let Err(e) = self.catalog().and_then(|c| c.add_event(&record)) {
            tracing::warn!("event not kept in the catalog: {e}");
        }
        tracing::info!(event = event.kind.as_str(), asset = ?event.asset, "{}", event.summary);
        self.notifiers().send(event)
    }

    fn event(&self, kind: NotifyEvent, job: &str, asset: Option<&str>, summary: String) -> Event {
        Event::new(kind, &self.plan().name, job, asset, summary)
    }

    fn add_run(&self, run: &Run) {
        if let Err(e) = self.catalog().and_then(|c| c.add_run(run)) {
            tracing::warn!("run not kept in the catalog: {e}");
        }
    }

    /// Records a backup: one run per asset, `failure` for each asset that failed and each copy
    /// that failed, `success` for each asset backed up; one audit line.
    pub fn record_backup(&self, report: &BackupReport, started: Timestamp, trigger: &str) {
        for a in &report.assets {
            let outcome = match (a.ok, a.warnings.is_empty()) {
                (true, true) => RunOutcome::Ok,
                (true, false) => RunOutcome::Partial,
                (false, _) if crate::interrupted() => RunOutcome::Cancelled,
                (false, _) => RunOutcome::Failed,
            };
            self.add_run(&Run {
                id: 0,
                job: "backup".to_owned(),
                asset: Some(a.asset.clone()),
                started_at: started,
                duration_secs: if a.ok {
                    a.duration_secs
                } else {
                    since(started)
                },
                bytes: a.ok.then_some(a.bytes),
                outcome,
                error: a.error.clone(),
                snapshot: a.snapshot.clone(),
                trigger: trigger.to_owned(),
            });
            match outcome {
                RunOutcome::Failed => {
                    self.raise(&self.event(
                        NotifyEvent::Failure,
                        "backup",
                        Some(&a.asset),
                        format!(
                            "backup of {} failed: {}",
                            a.asset,
                            a.error.as_deref().unwrap_or("unknown error")
                        ),
                    ));
                }
                RunOutcome::Ok | RunOutcome::Partial => {
                    if let Some(breach) = &a.size_breach {
                        self.raise(&self.event(
                            NotifyEvent::SizeAnomaly,
                            "backup",
                            Some(&a.asset),
                            format!("{}: {breach}", a.asset),
                        ));
                    }
                    let mut summary = format!(
                        "{} backed up: {} in {:.1}s",
                        a.asset,
                        human_bytes(a.bytes),
                        a.duration_secs
                    );
                    if outcome == RunOutcome::Partial {
                        summary.push_str(&format!(", {} warning(s)", a.warnings.len()));
                    }
                    self.raise(&self.event(
                        NotifyEvent::Success,
                        "backup",
                        Some(&a.asset),
                        summary,
                    ));
                }
                RunOutcome::Cancelled => {}
            }
        }
        for c in &report.copies {
            if let Some(err) = &c.error {
                self.raise(&self.event(
                    NotifyEvent::Failure,
                    "copy",
                    None,
                    format!("copy to repository {} failed: {err}", c.repository),
                ));
            }
        }
        let names: Vec<&str> = report.assets.iter().map(|a| a.asset.as_str()).collect();
        let failed: Vec<&str> = report
            .assets
            .iter()
            .filter(|a| !a.ok)
            .map(|a| a.asset.as_str())
            .collect();
        let outcome = match report.exit_code() {
            0 => "ok",
            3 => "partial",
            _ if crate::interrupted() => "cancelled",
            _ => "failed",
        };
        let detail = (!failed.is_empty()).then(|| format!("failed: {}", failed.join(", ")));
        self.audit(
            &format!("backup {}", names.join(" ")),
            outcome,
            detail.as_deref(),
        );
    }

    /// Records a verify: one run, `size-anomaly` per size finding, `failure` for any other
    /// error, `success` when clean; one audit line.
    pub fn record_verify(&self, report: &VerifyReport, started: Timestamp, trigger: &str) {
        let other_errors: Vec<&crate::Finding> = report
            .findings
            .iter()
            .filter(|f| f.level == Level::Error && f.kind != FindingKind::SizeAnomaly)
            .collect();
        let outcome = if !report.errors.is_empty() {
            RunOutcome::Failed
        } else if report.warnings.is_empty() {
            RunOutcome::Ok
        } else {
            RunOutcome::Partial
        };
        self.add_run(&Run {
            id: 0,
            job: "verify".to_owned(),
            asset: None,
            started_at: started,
            duration_secs: since(started),
            bytes: None,
            outcome,
            error: report.errors.first().cloned(),
            snapshot: None,
            trigger: trigger.to_owned(),
        });
        for f in report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::SizeAnomaly)
        {
            self.raise(&self.event(
                NotifyEvent::SizeAnomaly,
                "verify",
                f.asset.as_deref(),
                f.message.clone(),
            ));
        }
        if let Some(first) = other_errors.first() {
            let more = other_errors.len() - 1;
            let summary = if more == 0 {
                format!("verify found a problem: {}", first.message)
            } else {
                format!(
                    "verify found {} problems, first: {}",
                    more + 1,
                    first.message
                )
            };
            self.raise(&self.event(NotifyEvent::Failure, "verify", None, summary));
        } else if report.errors.is_empty() {
            self.raise(&self.event(
                NotifyEvent::Success,
                "verify",
                None,
                format!(
                    "verify passed: {} snapshot(s) of {} asset(s)",
                    report.snapshots_examined,
                    report.assets.len()
                ),
            ));
        }
        self.audit(
            &format!(
                "verify {}{}",
                report.assets.join(" "),
                report
                    .read_data
                    .as_deref()
                    .map(|r| format!(" --read-data={r}"))
                    .unwrap_or_default()
            ),
            outcome.as_str(),
            report.errors.first().map(String::as_str),
        );
    }

    /// Records a drill: one run per asset, `drill-failed` per failed asset (and for a drill
    /// over the plan's RTO), `success` when it passed; one audit line.
    pub fn record_drill(&self, report: &DrillReport, trigger: &str) {
        for a in &report.assets {
            let passed = a.passed();
            self.add_run(&Run {
                id: 0,
                job: "drill".to_owned(),
                asset: Some(a.asset.clone()),
                started_at: report.started_at,
                duration_secs: a.rto_secs,
                bytes: Some(a.bytes),
                outcome: if passed {
                    RunOutcome::Ok
                } else {
                    RunOutcome::Failed
                },
                error: (!passed).then(|| drill_problem(a)),
                snapshot: a.snapshot.clone(),
                trigger: trigger.to_owned(),
            });
            if !passed {
                self.raise(&self.event(
                    NotifyEvent::DrillFailed,
                    "drill",
                    Some(&a.asset),
                    format!("drill of {} failed: {}", a.asset, drill_problem(a)),
                ));
            }
        }
        let assets_passed = report.assets.iter().all(crate::SandboxRestore::passed);
        if !report.passed && assets_passed {
            self.raise(&self.event(
                NotifyEvent::DrillFailed,
                "drill",
                None,
                format!(
                    "drill took {} against an RTO of {}",
                    crate::human_secs(report.rto_secs),
                    crate::human_secs(report.rto_target_secs as f64)
                ),
            ));
        }
        if report.passed {
            self.raise(&self.event(
                NotifyEvent::Success,
                "drill",
                None,
                format!(
                    "drill passed: {} asset(s) restored and checked in {}",
                    report.assets.len(),
                    crate::human_secs(report.rto_secs)
                ),
            ));
        }
        let names: Vec<&str> = report.assets.iter().map(|a| a.asset.as_str()).collect();
        self.audit(
            &format!("drill {}", names.join(" ")),
            if report.passed { "ok" } else { "failed" },
            None,
        );
    }

    /// Records a job that ended without a report of its own (forget, prune, copy, restore) or
    /// that failed as a whole (a repository that cannot be opened): one run, `failure` when it
    /// failed, one audit line. `what` is the audit line's operation, e.g. `prune`.
    pub fn record_job(
        &self,
        job: &str,
        what: &str,
        started: Timestamp,
        result: Result<(), &EngineError>,
        trigger: &str,
    ) {
        let outcome = match result {
            Ok(()) => RunOutcome::Ok,
            Err(_) if crate::interrupted() => RunOutcome::Cancelled,
            Err(_) => RunOutcome::Failed,
        };
        let error = result.err().map(ToString::to_string);
        self.add_run(&Run {
            id: 0,
            job: job.to_owned(),
            asset: None,
            started_at: started,
            duration_secs: since(started),
            bytes: None,
            outcome,
            error: error.clone(),
            snapshot: None,
            trigger: trigger.to_owned(),
        });
        if let (RunOutcome::Failed, Some(e)) = (outcome, &error) {
            self.raise(&self.event(
                NotifyEvent::Failure,
                job,
                None,
                format!("{job} failed: {e}"),
            ));
        }
        self.audit(what, outcome.as_str(), error.as_deref());
    }
}

impl Engine {
    /// Records copies between repositories: one run and one audit line each, `failure` for
    /// each that failed.
    pub fn record_copies(
        &self,
        outcomes: &[crate::CopyOutcome],
        started: Timestamp,
        trigger: &str,
    ) {
        for o in outcomes {
            let what = format!("copy --from {} --to {}", o.from, o.repository);
            let outcome = match &o.error {
                None => RunOutcome::Ok,
                Some(_) if crate::interrupted() => RunOutcome::Cancelled,
                Some(_) => RunOutcome::Failed,
            };
            self.add_run(&Run {
                id: 0,
                job: "copy".to_owned(),
                asset: None,
                started_at: started,
                duration_secs: since(started),
                bytes: None,
                outcome,
                error: o.error.clone(),
                snapshot: None,
                trigger: trigger.to_owned(),
            });
            if let (RunOutcome::Failed, Some(e)) = (outcome, &o.error) {
                self.raise(&self.event(
                    NotifyEvent::Failure,
                    "copy",
                    None,
                    format!("copy to repository {} failed: {e}", o.repository),
                ));
            }
            let detail = o
                .error
                .clone()
                .unwrap_or_else(|| format!("{} snapshot(s) copied", o.copied));
            self.audit(&what, outcome.as_str(), Some(&detail));
        }
    }
}

impl Engine {
    /// Records a scenario run unattended: one run; for a rehearsal on sandboxes
    /// `drill-failed` when a step failed or the RTO target was missed, for a live run
    /// `failure`; else `success`; one audit line.
    pub fn record_scenario(
        &self,
        report: &crate::RecoverReport,
        started: Timestamp,
        trigger: &str,
    ) {
        let passed = report.ok && report.rto_met();
        let outcome = match (passed, report.ok) {
            (true, _) => RunOutcome::Ok,
            (false, true) => RunOutcome::Partial,
            (false, false) if crate::interrupted() => RunOutcome::Cancelled,
            (false, false) => RunOutcome::Failed,
        };
        let summary = report.summary();
        self.add_run(&Run {
            id: 0,
            job: "recover".to_owned(),
            asset: None,
            started_at: started,
            duration_secs: since(started),
            bytes: None,
            outcome,
            error: (!passed).then(|| summary.clone()),
            snapshot: None,
            trigger: trigger.to_owned(),
        });
        let live = report.mode == crate::RecoverMode::Live;
        let kind = match (passed, live) {
            (true, _) => NotifyEvent::Success,
            (false, false) => NotifyEvent::DrillFailed,
            (false, true) => NotifyEvent::Failure,
        };
        let (done, flag) = if live {
            ("run", "--yes")
        } else {
            ("rehearsed", "--drill")
        };
        self.raise(&self.event(
            kind,
            "recover",
            None,
            format!("scenario {} {done}: {summary}", report.scenario),
        ));
        self.audit(
            &format!("recover {} {flag}", report.scenario),
            if passed { "ok" } else { "failed" },
            (!passed).then_some(summary.as_str()),
        );
    }
}

/// A failed drill asset's first problem, or the target it missed.
fn drill_problem(a: &crate::SandboxRestore) -> String {
    if let Some(p) = a.problems.first() {
        return p.clone();
    }
    if !a.rto_met() {
        return format!(
            "restore took {} against an RTO of {}",
            crate::human_secs(a.rto_secs),
            crate::human_secs(a.rto_target_secs as f64)
        );
    }
    match a.rpo_secs {
        Some(age) => format!(
            "newest snapshot is {} old against an RPO of {}",
            crate::human_secs(age as f64),
            crate::human_secs(a.rpo_target_secs as f64)
        ),
        None => "no snapshot to restore".to_owned(),
    }
}
