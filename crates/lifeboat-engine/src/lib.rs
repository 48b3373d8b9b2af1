//! Lifeboat's jobs. The CLI and the daemon call these functions; each takes the
//! resolved plan and returns a report that the caller renders as text or JSON.
//!
//! Jobs that change something build a plan first (`--dry-run` prints it) and then apply it.

mod actions;
pub mod audit;
mod browse;
mod catalog;
mod copy;
mod drill;
mod engine;
mod error;
mod host;
mod incident;
mod interrupt;
mod jobs;
mod journal;
mod keys;
mod kinds;
mod kit;
mod lint;
mod mail;
pub mod notify;
mod proof;
mod protocol;
mod recover;
mod report;
mod restore;
mod safety;
mod secrets;
pub use secrets::read_secret;
mod verify;

pub use actions::{
    DamagedTarget, DeltaSummary, RecoveryTarget, RestoreAction, RestoreReport, RestoreRequest,
};
pub use browse::{Download, SnapshotDetail};
pub use catalog::{CATALOG_ENV, EventRecord, Rebuilt, Run, RunOutcome};
pub use copy::{CopyOutcome, CopyStatus};
pub use drill::SandboxRestore;
pub use engine::Engine;
pub use error::EngineError;
pub use host::{host_name, user_name};
pub use interrupt::{interrupted, on_interrupt};
pub use jobs::{AssetBackup, AssetStatus, BackupReport, ForgetReport, InitReport, RepositoryStats};
pub use kinds::{Compacted, Description, PushOutcome, WalStatus, describe};
pub use kit::Kit;
/// The scratch servers drills and restores load into (their own crate, shared with the tests).
pub use lifeboat_sandbox as sandbox;
pub use lint::{PlanCheck, PlanFinding};
pub use proof::{CheckOutcome, Phases};
pub use protocol::{Job, Outcome};
pub use recover::{
    RecoverMode, RecoverReport, RecoverRequest, RecoverUi, RestoredAsset, StepRecord, StepStatus,
};
pub use report::{DRILLS_ASSET, DrillReport, PastDrill, human_secs};
pub use verify::{
    Finding, FindingKind, Level, ReadData, VerifyReport, human_bytes, size_anomalies,
};
