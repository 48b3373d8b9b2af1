//! One job under the daemon: claim its assets, take a slot on its repository, run the engine
//! on a blocking thread, record the outcome (catalog, notifications, audit) through the same
//! engine functions the CLI uses.

use std::{collections::HashSet, sync::Arc, time::Duration};

use jiff::Timestamp;
use lifeboat_engine::{Engine, Job, ReadData};
use serde::Serialize;

use crate::state::{ActiveJob, AppState, lock};

/// What the daemon can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "job", rename_all = "kebab-case")]
pub enum JobKind {
    /// Back up these assets (one snapshot each).
    Backup { assets: Vec<String> },
    /// Verify every asset; `read_data` like `--read-data=N%`.
    Verify { read_data: Option<String> },
    /// A restore drill of these assets (every asset when empty); the report is saved in the
    /// repository.
    Drill { assets: Vec<String> },
    /// Apply every asset's retention in every repository.
    Forget,
    /// Remove data no snapshot uses, in every repository.
    Prune,
    /// Copy snapshots into every `copy-from` repository.
    Copy,
    /// Rehearse a scenario on sandboxes (`[schedules] scenarios`).
    Scenario { name: String },
    /// Run a scenario against the live targets (an operator on the dashboard).
    Runbook { name: String },
}

impl JobKind {
    /// The job's name in runs, logs and the audit log.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Backup { .. } => "backup",
            Self::Verify { .. } => "verify",
            Self::Drill { .. } => "drill",
            Self::Forget => "forget",
            Self::Prune => "prune",
            Self::Copy => "copy",
            Self::Scenario { .. } => "scenario",
            Self::Runbook { .. } => "runbook",
        }
    }

    /// Unique among jobs that must not wait or run twice: `backup:db`, `verify`.
    #[must_use]
    pub fn key(&self) -> String {
        match self {
            Self::Backup { assets } => format!("backup:{}", assets.join(",")),
            Self::Drill { assets } if !assets.is_empty() => format!("drill:{}", assets.join(",")),
            Self::Scenario { name } => format!("scenario:{name}"),
            Self::Runbook { name } => format!("runbook:{name}"),
            other => other.name().to_owned(),
        }
    }

    /// The assets the job reads or writes: none may be in another job meanwhile.
    fn assets(&self, engine: &Engine) -> Vec<String> {
        match self {
            Self::Backup { assets } => assets.clone(),
            Self::Drill { assets } if !assets.is_empty() => assets.clone(),
            // Sandboxes only: it reads the repository beside the other jobs.
            Self::Copy | Self::Scenario { .. } => Vec::new(),
            _ => engine
                .plan()
                .assets
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        }
    }

    /// The engine job to run.
    fn job(&self) -> Job {
        match self {
            Self::Backup { assets } => Job::Backup {
                assets: assets.clone(),
            },
            Self::Verify { read_data } => Job::Verify {
                assets: Vec::new(),
                // Checked when the plan was loaded.
                read_data: read_data
                    .as_deref()
                    .and_then(|r| r.parse::<ReadData>().ok()),
            },
            Self::Drill { assets } => Job::Drill {
                assets: assets.clone(),
                parallel: 1,
                report: None,
            },
            // Every repository, each with its own rules: a copy that is never forgotten would
            // grow for ever.
            Self::Forget => Job::Forget {
                apply: true,
                everywhere: true,
            },
            Self::Prune => Job::Prune {
                dry_run: false,
                everywhere: true,
            },
            Self::Copy => Job::Copy {
                from: None,
                to: None,
            },
            Self::Scenario { name } => Job::Scenario {
                scenario: name.clone(),
                live: false,
            },
            Self::Runbook { name } => Job::Scenario {
                scenario: name.clone(),
                live: true,
            },
        }
    }

    /// Jobs that rewrite the repository's index run alone on it.
    const fn exclusive(&self) -> bool {
        matches!(self, Self::Forget | Self::Prune)
    }
}

/// Why a job did not start.
#[derive(Debug)]
pub enum Refused {
    /// Another job holds one of its assets (or the same job is already waiting).
    Busy(String),
    Stopping,
}

/// Marks `assets` busy if none is; the caller must [`release`] them.
fn try_claim(state: &AppState, assets: &[String]) -> bool {
    let mut busy = lock(&state.0.busy);
    if assets.iter().any(|a| busy.contains(a)) {
        return false;
    }
    busy.extend(assets.iter().cloned());
    true
}

fn release(state: &AppState, assets: &[String], key: &str) {
    {
        let mut busy = lock(&state.0.busy);
        for a in assets {
            busy.remove(a);
        }
    }
    lock(&state.0.active).remove(key);
    state.0.released.notify_waiters();
}

/// What `job` took last time: the newest backups' durations, or the newest drills' restore
/// times, summed over its assets; `None` when one of them was never done.
fn expected_secs(state: &AppState, job: &JobKind) -> Option<f64> {
    let cache = state.cache();
    let all = || {
        cache
            .assets
            .iter()
            .map(|a| a.asset.clone())
            .collect::<Vec<_>>()
    };
    match job {
        JobKind::Backup { assets } => assets
            .iter()
            .map(|a| {
                cache
                    .assets
                    .iter()
                    .find(|s| &s.asset == a)
                    .and_then(|s| s.last_duration_secs)
            })
            .sum(),
        JobKind::Drill { assets } => {
            let assets = if assets.is_empty() {
                all()
            } else {
                assets.clone()
            };
            assets.iter().map(|a| cache.drill_rto.get(a).copied()).sum()
        }
        _ => None,
    }
}

/// Registers `job` as active; `None` when the same job is already waiting or running.
fn register(state: &AppState, job: &JobKind, trigger: &str) -> Option<String> {
    let key = job.key();
    let mut active = lock(&state.0.active);
    if active.contains_key(&key) {
        return None;
    }
    active.insert(
        key.clone(),
        ActiveJob {
            key: key.clone(),
            trigger: trigger.to_owned(),
            since: Timestamp::now(),
            running: false,
            expected_secs: expected_secs(state, job),
        },
    );
    Some(key)
}

/// Starts `job` now if its assets are free, else refuses (HTTP requests).
///
/// # Errors
/// [`Refused::Busy`] naming what is busy; [`Refused::Stopping`] during shutdown.
pub fn start_now(state: &AppState, job: JobKind, trigger: &str) -> Result<(), Refused> {
    if state.stopping() {
        return Err(Refused::Stopping);
    }
    let engine = state.engine();
    let assets = job.assets(&engine);
    let Some(key) = register(state, &job, trigger) else {
        return Err(Refused::Busy(format!(
            "{} is already waiting or running",
            job.key()
        )));
    };
    if !try_claim(state, &assets) {
        lock(&state.0.active).remove(&key);
        let busy = lock(&state.0.busy);
        let held: Vec<&String> = assets.iter().filter(|a| busy.contains(*a)).collect();
        return Err(Refused::Busy(format!(
            "asset(s) {} are in another job",
            held.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let state = state.clone();
    let trigger = trigger.to_owned();
    tokio::spawn(async move { run_claimed(state, engine, job, key, assets, trigger).await });
    Ok(())
}

/// Runs `job` once its assets are free (scheduled runs). A job already waiting or running
/// is not queued again.
pub async fn run_when_free(state: AppState, job: JobKind, trigger: &str) {
    let Some(key) = register(&state, &job, trigger) else {
        tracing::warn!(job = %job.key(), "still waiting or running from its last due time: this run is skipped");
        return;
    };
    let engine = state.engine();
    let assets = job.assets(&engine);
    loop {
        if state.stopping() {
            lock(&state.0.active).remove(&key);
            return;
        }
        let released = state.0.released.notified();
        if try_claim(&state, &assets) {
            break;
        }
        tracing::info!(job = %key, "waiting for another job on its assets");
        // Bounded, so a stop request is seen even if no job ends.
        let _ = tokio::time::timeout(Duration::from_secs(5), released).await;
    }
    run_claimed(state, engine, job, key, assets, trigger.to_owned()).await;
}

async fn run_claimed(
    state: AppState,
    engine: Arc<Engine>,
    job: JobKind,
    key: String,
    assets: Vec<String>,
    trigger: String,
) {
    let plan = engine.plan();
    let parallel = plan.schedules.parallel;
    let mut repos: Vec<String> = vec![plan.primary().name.clone()];
    if job == JobKind::Copy {
        repos.extend(
            plan.repositories
                .iter()
                .filter(|r| r.copy_from.is_some())
                .map(|r| r.name.clone()),
        );
    }
    repos.sort();
    repos.dedup();
    let mut permits = Vec::new();
    for r in &repos {
        let (sem, total) = state.slots(r, parallel);
        let need = if job.exclusive() { total } else { 1 };
        match sem
            .acquire_many_owned(u32::try_from(need).unwrap_or(1))
            .await
        {
            Ok(p) => permits.push(p),
            Err(_) => {
                release(&state, &assets, &key);
                return;
            }
        }
    }
    if let Some(a) = lock(&state.0.active).get_mut(&key) {
        a.running = true;
    }
    tracing::info!(job = %key, trigger = %trigger, "job started");
    let name = job.name();
    let engine2 = Arc::clone(&engine);
    let result = tokio::task::spawn_blocking(move || execute(&engine2, &job, &trigger)).await;
    if let Err(e) = result {
        tracing::error!(job = %key, "job ended abnormally: {e}");
    }
    drop(permits);
    release(&state, &assets, &key);
    tracing::info!(job = %key, "job ended");
    crate::watchdog::refresh(&state).await;
    maybe_save_audit(&state, name);
}

/// Runs `job` to its end on this (blocking) thread; the engine's job protocol records it.
pub(crate) fn execute(engine: &Engine, job: &JobKind, trigger: &str) {
    // A failure is recorded (run, notification, audit line) before it is returned.
    let _ = engine.run_job(&job.job(), trigger);
}

/// The set of assets busy right now (for `/api/status`).
#[must_use]
pub fn busy_assets(state: &AppState) -> HashSet<String> {
    lock(&state.0.busy).clone()
}

/// The audit log is copied into the repository after a job at most this often.
const AUDIT_COPY_EVERY: Duration = Duration::from_secs(3600);

/// Copies the audit log into the repository after `job`, at most once an hour.
fn maybe_save_audit(state: &AppState, job: &str) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    {
        let mut last = lock(&LAST);
        if last.is_some_and(|t| t.elapsed() < AUDIT_COPY_EVERY) || state.stopping() {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    let engine = state.engine();
    let job = job.to_owned();
    tokio::task::spawn_blocking(move || match engine.save_audit() {
        Ok(_) => tracing::debug!("audit log copied into the repository after {job}"),
        Err(e) => tracing::warn!("copy the audit log into the repository: {e}"),
    });
}
