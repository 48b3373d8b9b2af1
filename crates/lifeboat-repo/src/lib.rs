//! Lifeboat's repository: restic-format snapshots, written by Lifeboat's own write path
//! (`write/`: chunking, compression, encryption, packs, index, trees, snapshots) and read,
//! checked, pruned and copied through `rustic_core`.
//!
//! Every call into `rustic_core` and `rustic_backend` stays in this crate, so an upgrade or a
//! replacement touches one place. A snapshot holds one asset: its streamed artifacts or walked
//! files, and its manifest (see [`source`] for the layout and docs/repository-format.md).

mod backup;
mod browse;
mod check;
mod config;
mod error;
mod fetch;
mod immutable;
mod keys;
mod listing;
mod lock;
mod maintenance;
mod merge;
mod progress;
mod reader;
mod repository;
mod restore;
mod restore_tree;
pub mod retention;
#[cfg(test)]
mod retention_vs_restic;
mod snapshot;
pub mod source;
mod spool;
mod store;
mod write;

pub use backup::BackupOutcome;
pub use browse::{EntryKind, TreeEntry};
pub use check::{CheckReport, DamagedPack, PackUsers};
pub use config::RepoConfig;
pub use error::{RepoError, RepoResult};
pub use immutable::Undeleted;
pub use keys::KeyInfo;
pub use lock::{
    DEFAULT_LOCK_WAIT, LOCK_WAIT_ENV, LockInfo, LockKind, RepoLock, lock_wait_from_env,
    release_all_locks,
};
pub use maintenance::PruneSummary;
pub use progress::{Progress, ProgressDisplay, ProgressIndicator, ProgressKind};
pub use reader::{Reader, original_paths};
pub use repository::Repo;
pub use restore_tree::RestoreSummary;
pub use retention::{Decision, decide};
pub use snapshot::{LIFEBOAT_TAG, SAFETY_TAG, SnapshotInfo};
pub use spool::SPOOL_DIR_ENV;

/// Runs a repository operation from async code.
///
/// rustic's S3 backend drives its own tokio runtime and panics when entered from an async task,
/// so every repository call made by the daemon goes through here.
///
/// # Panics
/// When the operation itself panics.
pub async fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}
