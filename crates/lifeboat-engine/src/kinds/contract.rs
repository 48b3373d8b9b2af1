//! The contract between the engine and an asset kind.

use std::path::Path;

use lifeboat_core::Manifest;
use lifeboat_plan::SecretSource;
use lifeboat_repo::{Decision, Repo, SnapshotInfo};
use lifeboat_sources::{Source, SourceError};

use super::job::{RestoreJob, SandboxJob};
use crate::{
    EngineError,
    proof::{Found, LiveCheck},
};

/// What an asset kind knows, as the engine needs it. The engine owns the order of a job, the
/// repository and its lock, the report and the safety copy; a kind owns how its target is
/// read, written and inspected.
///
/// The contract every implementation keeps (the conformance test checks it for each kind):
/// - **Back up**: [`Kind::source`] gives the [`Source`] whose snapshot holds everything the
///   restore, the sandbox load and the manifest comparison need, and whose manifest records
///   what the comparison counts (rows per table, keys per database, files and bytes). A
///   source that cannot read its target consistently fails with a `SourceError` (or a dump
///   that fails mid-stream) and leaves no snapshot; only a tree source keeps what it could
///   read, naming the rest in the manifest's warnings.
/// - **Restore**: [`Kind::restore`] first plans: it pushes every [`crate::RestoreAction`] it
///   will take into the job's report, the safety copy included, and returns when the request
///   is a dry run without touching anything. Otherwise it applies them so that a failure at
///   any point leaves the live target as it was: the new content is built beside the target
///   (a file staged next to it, a scratch database, a sandbox checked against the manifest)
///   and swapped in last. The safety copy is asked of the engine through
///   [`RestoreJob::safety_copy`] before anything of the target is replaced (a database kind:
///   once the new content is loaded and checked, just before the swap), naming the raw files
///   that stand for the target when it cannot be read consistently: a damaged target must not
///   stop the restore. A kind never calls back into the engine otherwise.
/// - **Sandbox**: [`Kind::sandbox`] loads the snapshot into something Lifeboat starts itself
///   (a scratch server, a work directory), never a live target, compares it with the manifest
///   (an `Err` names the difference) and runs the asset's checks, marking each phase on the
///   job's clock.
/// - **Live**: [`Kind::inspect_live`] reads the live target without changing it and compares
///   it with a manifest when one is given.
/// - **Lint** and **describe** read the plan entry only; they never connect to anything.
pub(crate) trait Kind {
    /// The source that backs the asset up (also for safety snapshots).
    ///
    /// # Errors
    /// The plan entry cannot be turned into a source (a bad URL, an unreadable password).
    fn source(&self) -> Result<Box<dyn Source>, SourceError>;

    /// What the kind does to its target for the time of a backup (containers stopped or
    /// paused), undone by [`Held::resume`], when dropped, or on an interrupt.
    ///
    /// # Errors
    /// The target could not be put in that state; nothing is left changed.
    fn hold_for_backup(&self) -> Result<Option<Held>, EngineError> {
        Ok(None)
    }

    /// Plans the restore into `job.report.actions`, then (unless a dry run) applies it.
    ///
    /// # Errors
    /// Anything that stops the restore; the live target is then as it was.
    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError>;

    /// Loads the snapshot into a sandbox, compares it with the manifest and runs the checks.
    ///
    /// # Errors
    /// Why the snapshot is not a working copy of what was recorded.
    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String>;

    /// Reads the live target: compared with `manifest` when given, then the asset's checks,
    /// run with `base` (the plan's directory) as their working directory where they are
    /// shell commands.
    ///
    /// # Errors
    /// The target cannot be reached or read at all.
    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        base: &Path,
    ) -> Result<LiveCheck, EngineError>;

    /// Why a runbook step restoring this asset would fail or do harm: `to` tells whether the
    /// step restores elsewhere, `tables` whether it picks tables.
    fn lint_restore_step(&self, _to: bool, _tables: bool) -> Option<Lint> {
        None
    }

    /// Where the asset's data lives and which secrets it reads, for `plan show` and exports.
    fn describe(&self) -> Description;

    /// Whether a restore can stop at any point in time (`--time`, a step's `time`), not only
    /// at a snapshot.
    fn recovers_to_a_point(&self) -> bool {
        false
    }

    /// The reserved asset whose snapshots extend this asset's own (a cluster's archived WAL:
    /// a restore reaches the newest of them), for the RPO.
    fn companion(&self) -> Option<String> {
        None
    }

    /// Snapshots of a reserved asset that live and die with this asset's own (a cluster's
    /// archived WAL): which of them retention keeps, given the asset's snapshots it keeps.
    /// `None` when the kind has none.
    ///
    /// # Errors
    /// The repository cannot be read.
    fn dependents(
        &self,
        _repo: &Repo,
        _kept: &[&SnapshotInfo],
    ) -> Result<Option<(String, Vec<Decision>)>, EngineError> {
        Ok(None)
    }

    /// What `verify` finds wrong beyond each snapshot (a break in a cluster's WAL chain): a
    /// line naming it and a hint, for each.
    ///
    /// # Errors
    /// The repository cannot be read.
    fn integrity(&self, _repo: &Repo) -> Result<Vec<(String, String)>, EngineError> {
        Ok(Vec::new())
    }
}

/// A target held still for a backup: put back by [`Held::resume`], by dropping it, or by
/// the interrupt handler should Lifeboat be stopped meanwhile.
pub(crate) struct Held {
    /// What was done, for the manifest (`stopped app; paused worker`).
    pub what: String,
    resume: Option<Box<dyn FnOnce() -> Result<(), EngineError> + Send>>,
    _interrupt: crate::interrupt::UndoGuard,
}

impl Held {
    /// `interrupt` is the interrupt handler's undo, registered before the target was
    /// touched; it is forgotten once `resume` has run.
    pub fn new(
        what: String,
        interrupt: crate::interrupt::UndoGuard,
        resume: impl FnOnce() -> Result<(), EngineError> + Send + 'static,
    ) -> Self {
        Self {
            what,
            resume: Some(Box::new(resume)),
            _interrupt: interrupt,
        }
    }

    /// Puts the target back as it was.
    ///
    /// # Errors
    /// What could not be put back.
    pub fn resume(mut self) -> Result<(), EngineError> {
        self.resume.take().map_or(Ok(()), |f| f())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(f) = self.resume.take() {
            let _ = f();
        }
    }
}

/// A plan problem a kind found, with what to do about it.
pub(crate) struct Lint {
    pub message: String,
    pub hint: String,
}

impl Lint {
    /// Tables picked from a database are restored into another one (PostgreSQL, MySQL).
    pub fn some_tables_in_place(asset: &str, to: bool, tables: bool) -> Option<Self> {
        (tables && !to).then(|| Self {
            message: format!("restores some tables of {asset} over its live database"),
            hint: "tables are restored into another database: add to = \"postgres://…/recovered\""
                .to_owned(),
        })
    }
}

/// An asset as the plan's readers show it: where its data lives, the secrets it reads.
#[derive(Debug, Clone)]
pub struct Description {
    /// A URL without password, a path, or the backup command.
    pub location: String,
    /// The secret sources the asset reads (passwords), none of their values.
    pub secrets: Vec<SecretSource>,
    /// How to put the asset back without Lifeboat, from its snapshot restored by stock restic
    /// into `DIR` (which then holds `DIR/<asset>/data` or `DIR/<asset>/files`).
    pub by_hand: String,
}
