//! What the daemon's tasks and handlers share.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use jiff::Timestamp;
use lifeboat_core::Secret;
use lifeboat_engine::{AssetStatus, Engine, RepositoryStats, WalStatus};
use lifeboat_repo::Progress;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

/// What the watchdog last saw; `/metrics` and `/api/status` read only this, never the repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cache {
    pub assets: Vec<AssetStatus>,
    pub repositories: Vec<RepositoryStats>,
    /// Achieved RTO of each asset's newest drill, in seconds.
    pub drill_rto: HashMap<String, f64>,
    /// The WAL archive of each `postgres-cluster` asset.
    pub wal: Vec<WalStatus>,
    pub refreshed: Option<Timestamp>,
    /// Why the last refresh failed, if it did.
    pub error: Option<String>,
}

/// A job running or waiting for its assets.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveJob {
    pub key: String,
    pub trigger: String,
    pub since: Timestamp,
    pub running: bool,
    /// What the same work took last time, in seconds: the dashboard's progress estimate.
    pub expected_secs: Option<f64>,
}

/// The daemon's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub plan_path: PathBuf,
    pub engine: RwLock<Arc<Engine>>,
    pub token: Option<Secret>,
    /// Bearer token needed for every route but `/healthz` (listening off loopback).
    pub token_everywhere: bool,
    /// Assets a job holds.
    pub busy: Mutex<HashSet<String>>,
    /// Jobs waiting or running, by key (`backup:db`, `verify`).
    pub active: Mutex<HashMap<String, ActiveJob>>,
    /// Signalled when a job ends: waiters try their assets again.
    pub released: Notify,
    /// Per repository: one permit per job that may run on it at once.
    pub slots: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
    pub cache: RwLock<Cache>,
    pub stopping: AtomicBool,
    pub started: Timestamp,
    /// The dashboard's logged-in sessions.
    pub sessions: crate::dashboard::Sessions,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("plan", &self.0.plan_path)
            .field("token", &self.0.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `plan`'s engine; `token_everywhere` when listening off loopback.
    #[must_use]
    pub fn new(
        plan_path: PathBuf,
        plan: lifeboat_plan::ResolvedPlan,
        token: Option<Secret>,
        token_everywhere: bool,
    ) -> Self {
        Self(Arc::new(Inner {
            plan_path,
            engine: RwLock::new(Arc::new(Engine::new(plan, Progress::hidden()))),
            token,
            token_everywhere,
            busy: Mutex::new(HashSet::new()),
            active: Mutex::new(HashMap::new()),
            released: Notify::new(),
            slots: Mutex::new(HashMap::new()),
            cache: RwLock::new(Cache::default()),
            stopping: AtomicBool::new(false),
            started: Timestamp::now(),
            sessions: crate::dashboard::Sessions::default(),
        }))
    }

    /// The engine of the plan in force. Jobs keep the one they started with.
    #[must_use]
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(
            &self
                .0
                .engine
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub(crate) fn replace_engine(&self, engine: Engine) {
        *self
            .0
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(engine);
    }

    #[must_use]
    pub fn cache(&self) -> Cache {
        self.0
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_cache(&self, cache: Cache) {
        *self
            .0
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cache;
    }

    pub(crate) fn stopping(&self) -> bool {
        self.0.stopping.load(Ordering::SeqCst)
    }

    /// Jobs waiting or running, oldest first.
    #[must_use]
    pub fn active_jobs(&self) -> Vec<ActiveJob> {
        let mut jobs: Vec<ActiveJob> = lock(&self.0.active).values().cloned().collect();
        jobs.sort_by_key(|j| j.since);
        jobs
    }

    /// The semaphore of repository `name` and its number of permits, created with
    /// `parallel` permits on first use. (A changed `parallel` takes effect when the daemon
    /// restarts: resizing under running jobs could let a prune overlap a backup.)
    pub(crate) fn slots(&self, name: &str, parallel: usize) -> (Arc<Semaphore>, usize) {
        let mut slots = lock(&self.0.slots);
        let (sem, n) = slots
            .entry(name.to_owned())
            .or_insert_with(|| (Arc::new(Semaphore::new(parallel)), parallel));
        (Arc::clone(sem), *n)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
