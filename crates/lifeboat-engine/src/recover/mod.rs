//! `recover SCENARIO`: a runbook's steps run in order, stopping at the first failure, with a
//! timeline and an incident report (`incident.rs`).
//!
//! Three modes. Live: restores go over the real targets, each after a safety snapshot (the
//! restore job's own); checks look at the real targets. `--dry-run`: every step is described,
//! restores planned against the repository, nothing changed. `--drill`: restores go into
//! sandboxes as in `drill`, checks look at the sandboxes, and steps that act on live services
//! (run, http, wait, confirm, notify) are shown as skipped.

use std::{path::PathBuf, time::Instant};

use jiff::Timestamp;
use lifeboat_plan::{ResolvedScenario, Step};
use serde::Serialize;

mod drill_steps;
mod live_steps;

use crate::{
    EngineError, RestoreAction, RestoreRequest, SandboxRestore, actions::short,
    drill::sandbox_restore, engine::Engine,
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
            before,
            time,
            to,
            tables,
            from,
        } => {
            let mut t = format!("restore {asset}");
            if let Some(time) = time {
                t.push_str(&format!(" to {time}"));
            }
            if !tables.is_empty() {
                t.push_str(&format!(" (tables {})", tables.join(", ")));
            }
            if let Some(s) = snapshot {
                t.push_str(&format!(" from snapshot {s}"));
            }
            if let Some(b) = before {
                t.push_str(&format!(" from the newest snapshot before {b}"));
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
        Step::Http {
            url,
            method,
            expect,
            ..
        } => format!("{method} {url} expecting {expect}"),
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
                before,
                time,
                to,
                tables,
                from,
            } => {
                let (snapshot, before) = match choice_now(asset, snapshot.as_ref(), before.as_ref())
                {
                    Ok(s) => s,
                    Err(e) => return failed(e),
                };
                let recovery = match recovery_now(asset, time.as_ref()) {
                    Ok(r) => r,
                    Err(e) => return failed(e),
                };
                let req = RestoreRequest {
                    asset: asset.clone(),
                    snapshot,
                    before,
                    to: to.as_ref().map(PathBuf::from),
                    dry_run: true,
                    yes: false,
                    skip_safety_snapshot: false,
                    tables: tables.clone(),
                    repository: from.clone(),
                    recovery,
                    delta: false,
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
            Step::Http {
                url,
                method,
                expect,
                ..
            } => planned(format!(
                "would send {method} {url} until it answers {expect}"
            )),
            Step::Wait { until, .. } => planned(format!("would wait until `{until}` succeeds")),
            Step::Confirm { prompt } => planned(format!("would ask: {prompt}")),
            Step::Notify { message, .. } => planned(format!("would send: {message}")),
        }
    }
}

/// A restore step's `snapshot` and `before`, each with its `${VAR}` expanded now.
fn choice_now(
    asset: &str,
    snapshot: Option<&String>,
    before: Option<&String>,
) -> Result<(Option<String>, Option<String>), String> {
    let expand = |v: Option<&String>| {
        v.map(|s| lifeboat_plan::expand_now(s))
            .transpose()
            .map_err(|e| {
                format!(
                    "choose the snapshot of {asset}: {e} (hint: set it to a snapshot id, e.g. the last one before the incident: `lifeboat snapshots --asset {asset}`, or to a time)"
                )
            })
    };
    Ok((expand(snapshot)?, expand(before)?))
}

/// A step's `time`, expanded now, as the cluster's recovery target.
fn recovery_now(
    asset: &str,
    time: Option<&String>,
) -> Result<Option<crate::RecoveryTarget>, String> {
    time.map(|t| {
        lifeboat_plan::expand_now(t)
            .map(crate::RecoveryTarget::Time)
            .map_err(|e| {
                format!(
                    "choose the point to recover {asset} to: {e} (hint: set it to the time before the incident, e.g. 2026-12-05 09:59:00+00)"
                )
            })
    })
    .transpose()
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
        RestoreAction::CreateVolume { volume } => format!("create volume {volume}"),
        RestoreAction::StopContainers { containers } => format!("stop {}", containers.join(", ")),
        RestoreAction::ReplaceVolume { volume } => {
            format!("replace the content of volume {volume}")
        }
        RestoreAction::StartContainers { containers } => {
            format!("start {} again", containers.join(", "))
        }
        RestoreAction::RecoverCluster {
            base, target, dest, ..
        } => format!(
            "recover base backup {} to {target} into {}",
            &base[..8.min(base.len())],
            dest.display()
        ),
    }
}
