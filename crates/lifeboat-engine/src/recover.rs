//! `recover SCENARIO`: a runbook's steps run in order, stopping at the first failure, with a
//! timeline and an incident report (`incident.rs`).
//!
//! Three modes. Live: restores go over the real targets, each after a safety snapshot (the
//! restore job's own); checks look at the real targets. `--dry-run`: every step is described,
//! restores planned against the repository, nothing changed. `--drill`: restores go into
//! sandboxes as in `drill`, checks look at the sandboxes, and steps that act on live services
//! (run, http, wait, confirm, notify) are shown as skipped.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use lifeboat_plan::{ResolvedScenario, Step};
use serde::Serialize;

use crate::{
    EngineError, RestoreAction, RestoreRequest, SandboxRestore,
    drill::{run_limited, sandbox_restore, tail},
    jobs::Engine,
};

/// What `recover` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RecoverRequest {
    pub scenario: String,
    /// Describe every step, change nothing.
    pub dry_run: bool,
    /// Ask nothing: restores go ahead, `confirm` steps are listed as follow-up items.
    pub yes: bool,
    /// Against sandboxes instead of the live targets.
    pub drill: bool,
}

/// How a recovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoverMode {
    Live,
    DryRun,
    Drill,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Not reached: an earlier step failed.
    NotRun,
    Done,
    Failed,
    /// Not run on purpose; the detail says why.
    Skipped,
    /// `--dry-run`: what would be done.
    Planned,
}

impl StepStatus {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::NotRun => "not run",
            Self::Done => "done",
            Self::Failed => "FAILED",
            Self::Skipped => "skipped",
            Self::Planned => "would run",
        }
    }
}

/// One step of a recovery and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// 1-based.
    pub index: usize,
    /// The step's verb: run, restore, check, http, wait, confirm, notify.
    pub kind: &'static str,
    /// One line: `restore db`, ``run `systemctl stop app` ``.
    pub title: String,
    /// Overwrites a live target (asked before unless `--yes`).
    pub destructive: bool,
    pub status: StepStatus,
    pub started_at: Option<Timestamp>,
    pub secs: f64,
    /// What happened, or why it failed or was skipped.
    pub detail: Option<String>,
}

/// An asset a recovery restored (or, in a drill, restored into a sandbox).
#[derive(Debug, Clone, Serialize)]
pub struct RestoredAsset {
    pub asset: String,
    /// The step that restored it.
    pub step: usize,
    pub repository: Option<String>,
    pub snapshot: String,
    pub snapshot_time: Timestamp,
    /// Age of the restored data when its restore started: the data lost (achieved RPO).
    pub data_age_secs: u64,
    pub rpo_target_secs: u64,
    /// Where it went: `live`, another target, or `sandbox`.
    pub target: String,
    /// The snapshot of what the target held before (live restores over the original).
    pub safety_snapshot: Option<String>,
    /// The command that puts the target back as it was before this recovery.
    pub rollback: Option<String>,
    /// A previous database or file kept beside the restored one.
    pub kept: Option<String>,
    /// The live target was too damaged to be read before it was replaced: why, and where its
    /// raw copy is.
    pub damaged: Option<crate::DamagedTarget>,
}

/// The outcome of `recover`: the incident report's content.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverReport {
    pub plan: String,
    pub plan_file: PathBuf,
    pub scenario: String,
    pub description: Option<String>,
    pub mode: RecoverMode,
    /// Ran with `--yes`.
    pub unattended: bool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Wall time from the first step to the end (achieved RTO).
    pub rto_secs: f64,
    pub rto_target_secs: u64,
    pub steps: Vec<StepRecord>,
    pub restored: Vec<RestoredAsset>,
    /// Every step done (or skipped on purpose).
    pub ok: bool,
    /// What to do now, most urgent first; empty when all went well.
    pub next: Vec<String>,
    /// What remains for a human after a successful run.
    pub follow_up: Vec<String>,
}

impl RecoverReport {
    #[must_use]
    pub fn rto_met(&self) -> bool {
        self.rto_secs <= self.rto_target_secs as f64
    }

    /// The step that failed, if one did.
    #[must_use]
    pub fn failed_step(&self) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.status == StepStatus::Failed)
    }
}

/// What the caller shows and asks while a recovery runs (the CLI prints a timeline and asks
/// on the terminal).
pub trait RecoverUi {
    /// A step begins.
    fn step_started(&mut self, step: &StepRecord, total: usize);
    /// A step ended (done, failed or skipped).
    fn step_finished(&mut self, step: &StepRecord, total: usize);
    /// Asks the operator a yes/no question; `true` goes on.
    fn ask(&mut self, question: &str) -> bool;
}

/// Whether a step overwrites a live target.
fn destructive(step: &Step) -> bool {
    matches!(step, Step::Restore { to: None, .. })
}

fn title(step: &Step) -> String {
    match step {
        Step::Run { run, .. } => format!("run `{run}`"),
        Step::Restore {
            asset,
            snapshot,
            to,
            tables,
            from,
        } => {
            let mut t = format!("restore {asset}");
            if !tables.is_empty() {
                t.push_str(&format!(" (tables {})", tables.join(", ")));
            }
            if let Some(s) = snapshot {
                t.push_str(&format!(" from snapshot {s}"));
            }
            if let Some(r) = from {
                t.push_str(&format!(" from repository {r}"));
            }
            match to {
                Some(to) => t.push_str(&format!(" into {}", lifeboat_core::redact_url(to))),
                None => t.push_str(" over its live target"),
            }
            t
        }
        Step::Check { asset } => format!("check {asset}"),
        Step::Http { url, expect, .. } => format!("GET {url} expecting {expect}"),
        Step::Wait { until, timeout, .. } => format!(
            "wait until `{until}` (up to {})",
            humantime::format_duration(*timeout)
        ),
        Step::Confirm { prompt } => format!("confirm: {prompt}"),
        Step::Notify { message, target } => format!(
            "notify {}: {message}",
            target.as_deref().unwrap_or("every notifier")
        ),
    }
}

const fn kind(step: &Step) -> &'static str {
    match step {
        Step::Run { .. } => "run",
        Step::Restore { .. } => "restore",
        Step::Check { .. } => "check",
        Step::Http { .. } => "http",
        Step::Wait { .. } => "wait",
        Step::Confirm { .. } => "confirm",
        Step::Notify { .. } => "notify",
    }
}

/// A step's result before timing: status and detail.
type Outcome = (StepStatus, String);

fn done(detail: impl Into<String>) -> Outcome {
    (StepStatus::Done, detail.into())
}

fn failed(detail: impl Into<String>) -> Outcome {
    (StepStatus::Failed, detail.into())
}

fn seconds_between(earlier: Timestamp, later: Timestamp) -> u64 {
    u64::try_from(later.as_second() - earlier.as_second()).unwrap_or(0)
}

/// The state a run carries from step to step.
struct Run<'a> {
    engine: &'a Engine,
    req: &'a RecoverRequest,
    mode: RecoverMode,
    restored: Vec<RestoredAsset>,
    /// Drill: the sandbox restore of each asset, for its later `check` steps.
    sandboxed: Vec<(usize, SandboxRestore)>,
    follow_up: Vec<String>,
}

impl Engine {
    /// The scenario named `name`, or an error listing those the plan has.
    ///
    /// # Errors
    /// An unknown name.
    pub fn scenario(&self, name: &str) -> Result<&ResolvedScenario, EngineError> {
        self.plan().scenario(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .plan()
                .scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            let hint = if known.is_empty() {
                "the plan has no [[scenarios]]; add one with name and steps".to_owned()
            } else {
                format!("the plan has: {}", known.join(", "))
            };
            EngineError::usage(format!("unknown scenario {name}"), Some(&hint))
        })
    }

    /// The steps of a scenario as they will be shown, none run yet.
    ///
    /// # Errors
    /// An unknown scenario.
    pub fn recover_steps(&self, name: &str) -> Result<Vec<StepRecord>, EngineError> {
        let scenario = self.scenario(name)?;
        Ok(scenario
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepRecord {
                index: i + 1,
                kind: kind(s),
                title: title(s),
                destructive: destructive(s),
                status: StepStatus::NotRun,
                started_at: None,
                secs: 0.0,
                detail: None,
            })
            .collect())
    }

    /// Whether running `name` live would ask the operator something (a restore over a live
    /// target, a `confirm` step) unless `--yes` is given.
    ///
    /// # Errors
    /// An unknown scenario.
    pub fn recover_asks(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self
            .scenario(name)?
            .steps
            .iter()
            .any(|s| destructive(s) || matches!(s, Step::Confirm { .. })))
    }

    /// Runs a scenario's steps in order and stops at the first failure. Step failures are in
    /// the report, not errors.
    ///
    /// # Errors
    /// An unknown scenario.
    pub fn recover(
        &self,
        req: &RecoverRequest,
        ui: &mut dyn RecoverUi,
    ) -> Result<RecoverReport, EngineError> {
        let scenario = self.scenario(&req.scenario)?;
        let mode = if req.drill {
            RecoverMode::Drill
        } else if req.dry_run {
            RecoverMode::DryRun
        } else {
            RecoverMode::Live
        };
        let mut steps = self.recover_steps(&req.scenario)?;
        let total = steps.len();
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let mut run = Run {
            engine: self,
            req,
            mode,
            restored: Vec::new(),
            sandboxed: Vec::new(),
            follow_up: Vec::new(),
        };
        let mut failed_at = None;
        for (i, step) in scenario.steps.iter().enumerate() {
            let record = &mut steps[i];
            record.started_at = Some(Timestamp::now());
            ui.step_started(record, total);
            let t = Instant::now();
            let (status, detail) = run.step(i + 1, step, ui);
            record.secs = t.elapsed().as_secs_f64();
            record.status = status;
            record.detail = Some(detail);
            ui.step_finished(record, total);
            if status == StepStatus::Failed {
                failed_at = Some(i);
                break;
            }
        }
        let rto_secs = clock.elapsed().as_secs_f64();
        let plan = self.plan();
        let mut report = RecoverReport {
            plan: plan.name.clone(),
            plan_file: self.plan_file(),
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            mode,
            unattended: req.yes,
            started_at,
            finished_at: Timestamp::now(),
            rto_secs,
            rto_target_secs: scenario.rto.unwrap_or(plan.rto).as_secs(),
            steps,
            restored: run.restored,
            ok: failed_at.is_none(),
            next: Vec::new(),
            follow_up: run.follow_up,
        };
        if let Some(i) = failed_at {
            report.next = self.next_steps(&report, scenario, i);
        } else if mode == RecoverMode::Live {
            self.add_follow_up(&mut report);
        }
        Ok(report)
    }

    /// What to do after step `failed` (0-based) failed.
    fn next_steps(
        &self,
        report: &RecoverReport,
        scenario: &ResolvedScenario,
        failed: usize,
    ) -> Vec<String> {
        let step = &report.steps[failed];
        let mut next = vec![format!(
            "Step {} ({}) failed: {}. Fix the cause first.",
            step.index,
            step.title,
            step.detail.as_deref().unwrap_or("no detail")
        )];
        if let Step::Restore { asset, .. } = &scenario.steps[failed] {
            next.push(format!(
                "The live target of {asset} was not switched over: Lifeboat swaps a restore in only once it is complete and checked{}.",
                if matches!(
                    self.plan().asset(asset).map(lifeboat_plan::ResolvedAsset::kind),
                    Some(lifeboat_core::AssetKind::Command)
                ) {
                    " (a command asset's restore command may have started: look at its target)"
                } else {
                    ""
                }
            ));
        }
        for r in report.restored.iter().rev() {
            if let Some(cmd) = &r.rollback {
                next.push(format!(
                    "To put {} back as it was before this recovery (safety snapshot {}): `{cmd}`",
                    r.asset,
                    r.safety_snapshot.as_deref().unwrap_or("?")
                ));
            }
        }
        let rest: Vec<String> = report.steps[failed + 1..]
            .iter()
            .map(|s| format!("{}. {}", s.index, s.title))
            .collect();
        if !rest.is_empty() {
            next.push(format!(
                "Steps not run yet: {}. Finish them by hand, or run `lifeboat recover {}` again once fixed (each restore takes a new safety snapshot).",
                rest.join("; "),
                report.scenario
            ));
        }
        next
    }

    /// After a successful live recovery: a fresh backup, and what was kept aside.
    fn add_follow_up(&self, report: &mut RecoverReport) {
        for r in &report.restored {
            if let Some(id) = r.damaged.as_ref().and_then(|d| d.raw_snapshot.as_deref()) {
                report.follow_up.push(format!(
                    "{}: the live target was damaged; find out why from its raw copy: `{}`.",
                    r.asset,
                    self.command_line(&format!(
                        "restore {} --snapshot {} --to DIR",
                        r.asset,
                        short(id)
                    ))
                ));
            }
            if let Some(kept) = &r.kept {
                report.follow_up.push(format!(
                    "{}: the previous data is kept as {kept}; remove it once the recovery is confirmed.",
                    r.asset
                ));
            }
        }
        if !report.restored.is_empty() {
            let assets: Vec<&str> = report.restored.iter().map(|r| r.asset.as_str()).collect();
            report.follow_up.push(format!(
                "Take a fresh backup of the restored assets: `{}`.",
                self.command_line(&format!("backup {}", assets.join(" ")))
            ));
        }
    }

    /// The plan file's absolute path.
    fn plan_file(&self) -> PathBuf {
        let plan = self.plan();
        plan.file
            .file_name()
            .map_or_else(|| plan.file.clone(), |name| plan.base_dir.join(name))
    }

    /// `lifeboat ARGS`, with `--config` when the plan is not `./lifeboat.toml`: a command that
    /// works from any directory.
    pub(crate) fn command_line(&self, args: &str) -> String {
        // Run with --repo: the same repository again.
        let args =
            if self.primary().name != self.plan().primary().name && !args.starts_with("--repo") {
                format!("--repo {} {args}", self.primary().name)
            } else {
                args.to_owned()
            };
        let file = &self.plan().file;
        if file.as_os_str() == "lifeboat.toml" || file.as_os_str() == "./lifeboat.toml" {
            format!("lifeboat {args}")
        } else {
            format!("lifeboat --config {} {args}", self.plan_file().display())
        }
    }
}

impl Run<'_> {
    fn step(&mut self, index: usize, step: &Step, ui: &mut dyn RecoverUi) -> Outcome {
        match self.mode {
            RecoverMode::DryRun => self.plan_step(step),
            RecoverMode::Drill => self.drill_step(index, step),
            RecoverMode::Live => self.live_step(index, step, ui),
        }
    }

    /// `--dry-run`: what would be done.
    fn plan_step(&self, step: &Step) -> Outcome {
        let planned = |d: String| (StepStatus::Planned, d);
        match step {
            Step::Restore {
                asset,
                snapshot,
                to,
                tables,
                from,
            } => {
                let snapshot = match snapshot_now(asset, snapshot.as_ref()) {
                    Ok(s) => s,
                    Err(e) => return failed(e),
                };
                let req = RestoreRequest {
                    asset: asset.clone(),
                    snapshot,
                    to: to.as_ref().map(PathBuf::from),
                    dry_run: true,
                    yes: false,
                    skip_safety_snapshot: false,
                    tables: tables.clone(),
                    repository: from.clone(),
                };
                match self.engine.restore(&req) {
                    Ok(r) => {
                        let actions: Vec<String> = r.actions.iter().map(describe_action).collect();
                        planned(format!(
                            "snapshot {} of {} (data age {}): {}",
                            short(&r.snapshot),
                            r.snapshot_time.strftime("%Y-%m-%d %H:%M:%S UTC"),
                            crate::human_secs(
                                seconds_between(r.snapshot_time, Timestamp::now()) as f64
                            ),
                            actions.join("; ")
                        ))
                    }
                    Err(e) => failed(with_hint(&e)),
                }
            }
            Step::Run { run, .. } => planned(format!("would run `{run}`")),
            Step::Check { asset } => planned(format!(
                "would compare {asset} with its snapshot's manifest and run its {} check(s)",
                self.engine
                    .plan()
                    .asset(asset)
                    .map_or(0, |a| a.checks.len())
            )),
            Step::Http { url, expect, .. } => {
                planned(format!("would GET {url} until it answers {expect}"))
            }
            Step::Wait { until, .. } => planned(format!("would wait until `{until}` succeeds")),
            Step::Confirm { prompt } => planned(format!("would ask: {prompt}")),
            Step::Notify { message, .. } => planned(format!("would send: {message}")),
        }
    }

    /// `--drill`: restores and checks in sandboxes; live-service steps skipped.
    fn drill_step(&mut self, index: usize, step: &Step) -> Outcome {
        let skipped = |what: &str| {
            (
                StepStatus::Skipped,
                format!(
                    "drill: {what} acts on the live services, so it runs only in a live recovery"
                ),
            )
        };
        match step {
            Step::Restore {
                asset,
                snapshot,
                from,
                tables,
                to,
            } => {
                let snapshot = match snapshot_now(asset, snapshot.as_ref()) {
                    Ok(s) => s,
                    Err(e) => return failed(e),
                };
                let sandbox = self.sandbox(asset, snapshot.as_deref(), from.as_deref());
                let outcome = match &sandbox {
                    Ok(r) if r.ok => {
                        let mut d = format!(
                            "snapshot {} restored into a sandbox in {}: {}",
                            r.snapshot.as_deref().unwrap_or("?"),
                            crate::human_secs(r.rto_secs),
                            r.compared.as_deref().unwrap_or("loaded")
                        );
                        if !tables.is_empty() || to.is_some() {
                            d.push_str(
                                " (the whole snapshot; a live recovery restores what the step names)",
                            );
                        }
                        done(d)
                    }
                    Ok(r) => failed(r.problems.join("; ")),
                    Err(e) => failed(with_hint(e)),
                };
                if let Ok(r) = sandbox {
                    if let (Some(id), Some(time)) = (&r.snapshot, r.snapshot_time) {
                        self.restored.push(RestoredAsset {
                            asset: asset.clone(),
                            step: index,
                            repository: from.clone(),
                            snapshot: id.clone(),
                            snapshot_time: time,
                            data_age_secs: r.rpo_secs.unwrap_or(0),
                            rpo_target_secs: r.rpo_target_secs,
                            target: "sandbox".into(),
                            safety_snapshot: None,
                            rollback: None,
                            kept: None,
                            damaged: None,
                        });
                    }
                    self.sandboxed.push((index, r));
                }
                outcome
            }
            Step::Check { asset } => {
                let earlier = self
                    .sandboxed
                    .iter()
                    .rev()
                    .find(|(_, r)| &r.asset == asset)
                    .map(|(i, r)| (*i, r.clone()));
                let (from_step, r) = match earlier {
                    Some(x) => x,
                    None => match self.sandbox(asset, None, None) {
                        Ok(r) => (index, r),
                        Err(e) => return failed(with_hint(&e)),
                    },
                };
                if !r.ok {
                    return failed(r.problems.join("; "));
                }
                let passed = r.checks.iter().filter(|c| c.ok).count();
                let whence = if from_step == index {
                    "newest snapshot restored into a sandbox".to_owned()
                } else {
                    format!("in the sandbox of step {from_step}")
                };
                done(format!(
                    "{whence}: {}; {passed} of {} check(s) passed",
                    r.compared.as_deref().unwrap_or("loaded"),
                    r.checks.len()
                ))
            }
            Step::Run { .. } => skipped("a command"),
            Step::Http { .. } => skipped("an HTTP check"),
            Step::Wait { .. } => skipped("a wait condition"),
            Step::Confirm { prompt } => (
                StepStatus::Skipped,
                format!("drill: asks the operator in a live recovery: {prompt}"),
            ),
            Step::Notify { .. } => (
                StepStatus::Skipped,
                "drill: notifies only in a live recovery".into(),
            ),
        }
    }

    /// Restores an asset's snapshot (or the newest regular one) into a sandbox and checks it.
    fn sandbox(
        &self,
        asset: &str,
        snapshot: Option<&str>,
        from: Option<&str>,
    ) -> Result<SandboxRestore, EngineError> {
        let a = self.engine.asset(asset)?;
        let repo = self.engine.open_named_or_primary(from)?;
        let snap = match snapshot {
            Some(id) if id != "latest" => Some(repo.find_snapshot(asset, Some(id))?),
            Some(_) | None => repo
                .snapshots()?
                .into_iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety()),
        };
        Ok(sandbox_restore(&repo, a, Ok(snap)))
    }

    fn live_step(&mut self, index: usize, step: &Step, ui: &mut dyn RecoverUi) -> Outcome {
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
                self.live_restore(index, asset, snapshot, to, tables, from)
            }
            Step::Check { asset } => self.live_check(asset),
            Step::Http {
                url,
                expect,
                body,
                retries,
                interval,
            } => http_step(url, *expect, body.as_deref(), *retries, *interval),
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
        snapshot: &Option<String>,
        to: &Option<String>,
        tables: &[String],
        from: &Option<String>,
    ) -> Outcome {
        let started = Timestamp::now();
        let snapshot = match snapshot_now(asset, snapshot.as_ref()) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let req = RestoreRequest {
            asset: asset.to_owned(),
            snapshot,
            to: to.as_ref().map(PathBuf::from),
            dry_run: false,
            yes: true,
            skip_safety_snapshot: false,
            tables: tables.to_vec(),
            repository: from.clone(),
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
        let found = match self.engine.check_live(a, baseline.as_ref().map(|(_, m)| m)) {
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
fn http_step(
    url: &str,
    expect: u16,
    body: Option<&str>,
    retries: u32,
    interval: Duration,
) -> Outcome {
    let client = match reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("start an HTTP client: {e}")),
    };
    let mut last = String::new();
    for attempt in 1..=retries.saturating_add(1) {
        match client.get(url).send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().unwrap_or_default();
                let body_ok = body.is_none_or(|b| text.contains(b));
                if status == expect && body_ok {
                    return done(format!(
                        "answered {status} after {attempt} tr{}",
                        plural_y(attempt)
                    ));
                }
                last = if status == expect {
                    format!(
                        "answered {status} without {:?} in its body",
                        body.unwrap_or("")
                    )
                } else {
                    format!("answered {status}: {}", tail(&text))
                };
            }
            // The error names the URL; a URL in a plan holds no secret (secrets live in *-env).
            Err(e) => last = e.to_string(),
        }
        if attempt <= retries && !crate::interrupted() {
            std::thread::sleep(interval);
        }
    }
    failed(format!(
        "{url} {last} (after {} tr{})",
        retries + 1,
        plural_y(retries + 1)
    ))
}

/// A restore step's `snapshot` with its `${VAR}` expanded now.
fn snapshot_now(asset: &str, snapshot: Option<&String>) -> Result<Option<String>, String> {
    snapshot
        .map(|s| lifeboat_plan::expand_now(s))
        .transpose()
        .map_err(|e| {
            format!(
                "choose the snapshot of {asset}: {e} (hint: set it to a snapshot id, e.g. the last one before the incident: `lifeboat snapshots --asset {asset}`)"
            )
        })
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn with_hint(e: &EngineError) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

fn describe_action(a: &RestoreAction) -> String {
    match a {
        RestoreAction::SafetySnapshot { asset } => format!("safety snapshot of {asset}"),
        RestoreAction::ReplacePath { path } => format!("replace {}", path.display()),
        RestoreAction::WriteTree { dest } => format!("write the files into {}", dest.display()),
        RestoreAction::WriteArtifact { artifact, dest } => {
            format!("write {artifact} to {}", dest.display())
        }
        RestoreAction::RunRestoreCommand { artifact } => {
            format!("feed {artifact} to the restore command")
        }
        RestoreAction::ReplayKeys { target } => format!("write every key into {target}"),
        RestoreAction::CreateDatabase { target } => format!("create {target}"),
        RestoreAction::LoadDump { artifact, target } => format!("load {artifact} into {target}"),
        RestoreAction::CheckCounts { target } => {
            format!("compare rows of {target} with the manifest")
        }
        RestoreAction::SwapDatabase {
            restored,
            target,
            kept,
        } => format!("swap {restored} in for {target}, keeping it as {kept}"),
    }
}
