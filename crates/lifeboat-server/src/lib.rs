//! Lifeboat's daemon: runs the plan's schedules, keeps the WAL streams of streamed
//! PostgreSQL clusters, watches every asset's RPO, notifies, and serves `/healthz`, `/metrics`, a JSON API and the web dashboard over HTTP. Also the export of the same
//! schedules for an external scheduler (`export`).
//!
//! The daemon is a function ([`run`]) plus thin HTTP handlers over [`AppState`]
//! ([`router`]). Every job is the engine's own, run on a blocking thread
//! (`spawn_blocking`): the engine blocks, and rustic's S3 backend runs its own runtime.
//!
//! Rules it keeps:
//! - never two jobs on one asset at once: a scheduled job waits for its assets, a job asked
//!   for over HTTP is refused with 409 while one of them is busy, and a job still waiting or
//!   running when it is due again is not queued twice;
//! - at most `[schedules].parallel` jobs on one repository; forget and prune run alone;
//! - SIGHUP reloads the plan; a plan that does not load is refused (logged and audited) and
//!   the running one kept;
//! - SIGTERM or SIGINT stops scheduling, lets running jobs finish for the grace period, then
//!   stops their child processes: a backup cut short leaves no snapshot (see
//!   `lifeboat_engine::on_interrupt`).

mod dashboard;
pub mod export;
mod http;
mod jobs;
mod metrics;
#[cfg(test)]
mod monitoring;
mod scheduler;
mod state;
mod streams;
mod watchdog;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use lifeboat_core::Secret;
use lifeboat_plan::ResolvedPlan;

pub use dashboard::hash_password;
pub use http::router;
pub use jobs::JobKind;
pub use state::AppState;
pub use watchdog::{RpoState, RpoTransition};

/// How the daemon runs.
#[derive(Debug)]
pub struct DaemonConfig {
    /// The plan file, read again on SIGHUP.
    pub plan_path: PathBuf,
    pub listen: SocketAddr,
    /// The bearer token for `POST` (and for everything but `/healthz` off loopback).
    pub token: Option<Secret>,
    /// How long running jobs may go on after SIGTERM before they are stopped.
    pub grace: Duration,
    /// How often the RPO watchdog looks at the repository.
    pub check_every: Duration,
}

/// Why the daemon could not start or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("listen on {addr}: an address other than loopback needs an API token")]
    NeedsToken { addr: SocketAddr },
    #[error("start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl DaemonError {
    /// One line the user can act on.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NeedsToken { .. } => {
                Some("set LIFEBOAT_API_TOKEN or --token-file, or listen on 127.0.0.1".to_owned())
            }
            Self::Listen { .. } => {
                Some("another process may hold the port: choose another with --listen".to_owned())
            }
            Self::Runtime(_) => None,
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Blocks; builds its own runtime.
///
/// # Errors
/// The address needs a token and none was given, or it cannot be bound.
pub fn run(config: DaemonConfig, plan: ResolvedPlan) -> Result<(), DaemonError> {
    if !config.listen.ip().is_loopback() && config.token.is_none() {
        return Err(DaemonError::NeedsToken {
            addr: config.listen,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lifeboat-daemon")
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(scheduler::serve(config, plan))
}
