//! What a kind works with: the restore job and the sandbox job the engine prepares for it.

use std::{
    fs,
    path::{Path, PathBuf},
};

use lifeboat_core::Manifest;
use lifeboat_plan::ResolvedAsset;
use lifeboat_repo::{Repo, SnapshotInfo};

use crate::{
    EngineError,
    actions::{RestoreAction, RestoreReport, RestoreRequest, Safety},
    proof::{Clock, Phases},
};

/// The engine's side of a safety copy: a kind asks, the engine writes it to the repository.
pub(crate) trait Keeper {
    /// A consistent safety snapshot of `asset`; when its target cannot be read consistently,
    /// the files of `raw` that exist, kept as they are (`kept` names what else stays of the
    /// old content).
    ///
    /// # Errors
    /// A failure of the repository: nothing of the target may be replaced then.
    fn safety_copy(
        &self,
        asset: &ResolvedAsset,
        raw: &[PathBuf],
        kept: Option<String>,
    ) -> Result<Safety, EngineError>;

    /// A safety snapshot by the asset's own backup and nothing else: for kinds whose target
    /// has no raw form (a command's service).
    ///
    /// # Errors
    /// The backup failed, for whatever reason.
    fn safety_snapshot(&self, asset: &ResolvedAsset) -> Result<String, EngineError>;
}

/// A restore the engine has prepared: the snapshot found, the repository locked, an in-place
/// restore confirmed. The kind plans into `report` and applies.
pub(crate) struct RestoreJob<'a> {
    pub asset: &'a ResolvedAsset,
    pub repo: &'a Repo,
    pub snap: &'a SnapshotInfo,
    /// The snapshot's manifest; `None` for a snapshot Lifeboat did not write.
    pub manifest: Option<Manifest>,
    pub req: &'a RestoreRequest,
    /// Where a cluster's recovery stops, resolved from `req.recovery`.
    pub recovery: Option<super::pg_cluster::Recovery>,
    pub report: RestoreReport,
    pub(crate) keeper: &'a dyn Keeper,
}

impl RestoreJob<'_> {
    /// Whether the restore goes over the asset's own target (no `--to`).
    pub fn in_place(&self) -> bool {
        self.req.to.is_none()
    }

    /// Adds an action to the plan.
    pub fn plan(&mut self, action: RestoreAction) {
        self.report.actions.push(action);
    }

    /// Plans the safety copy of the live target.
    pub fn plan_safety_copy(&mut self) {
        let asset = self.asset.name.clone();
        self.plan(RestoreAction::SafetySnapshot { asset });
    }

    /// Takes the safety copy of the live target (see [`Keeper::safety_copy`]) and records it in
    /// the report. Returns whether the target was found damaged.
    ///
    /// # Errors
    /// A failure of the repository.
    pub fn safety_copy(
        &mut self,
        raw: &[PathBuf],
        kept: Option<String>,
    ) -> Result<bool, EngineError> {
        self.safety_copy_of(self.asset, raw, kept)
    }

    /// [`Self::safety_copy`] of another form of the asset (a files asset narrowed to the
    /// paths that exist).
    ///
    /// # Errors
    /// A failure of the repository.
    pub fn safety_copy_of(
        &mut self,
        asset: &ResolvedAsset,
        raw: &[PathBuf],
        kept: Option<String>,
    ) -> Result<bool, EngineError> {
        let outcome = self.keeper.safety_copy(asset, raw, kept)?;
        let damaged = matches!(outcome, Safety::Damaged(_));
        outcome.record(&mut self.report);
        Ok(damaged)
    }

    /// The manifest and the one artifact of a snapshot of a streamed asset (a command's
    /// output, a database dump).
    ///
    /// # Errors
    /// The snapshot has no manifest or no artifact.
    pub fn streamed(&mut self) -> Result<(Manifest, String), EngineError> {
        let snap = self.snap;
        let manifest = self.manifest.take().ok_or_else(|| {
            EngineError::usage(
                format!("snapshot {} was not written by Lifeboat", snap.short_id),
                None,
            )
        })?;
        let artifact = manifest
            .artifacts
            .first()
            .map(|a| a.name.clone())
            .ok_or_else(|| {
                EngineError::usage(format!("snapshot {} has no artifact", snap.short_id), None)
            })?;
        Ok((manifest, artifact))
    }
}

/// A sandbox load a drill or `verify --restore` prepared: the manifest read and a work
/// directory made. The kind marks each phase on the clock as it ends.
pub(crate) struct SandboxJob<'a> {
    pub repo: &'a Repo,
    pub snap: &'a SnapshotInfo,
    pub manifest: &'a Manifest,
    /// A directory of the job's own, removed afterwards.
    pub work: &'a Path,
    pub(crate) clock: Clock,
    pub(crate) phases: Phases,
}

impl SandboxJob<'_> {
    /// Writes every artifact of the snapshot into the work directory, each checked against
    /// the manifest, and ends the fetch phase. Returns the bytes written.
    ///
    /// # Errors
    /// The repository could not give an artifact as recorded.
    pub fn fetch(&mut self) -> Result<u64, String> {
        let mut bytes = 0;
        for a in &self.manifest.artifacts {
            let path = self.work.join(&a.name);
            let mut file =
                fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
            bytes += self
                .repo
                .dump_artifact(self.snap, self.manifest, &a.name, &mut file)
                .map_err(|e| e.to_string())?;
        }
        self.phases.fetch = self.clock.lap();
        Ok(bytes)
    }

    /// Where the snapshot's first (for most kinds, only) artifact was fetched to.
    ///
    /// # Errors
    /// The snapshot has no artifact.
    pub fn only_artifact(&self) -> Result<PathBuf, String> {
        self.manifest
            .artifacts
            .first()
            .map(|a| self.work.join(&a.name))
            .ok_or_else(|| "the snapshot has no artifact".to_owned())
    }

    /// Ends the restore phase: the data is loaded.
    pub fn loaded(&mut self) {
        self.phases.restore = self.clock.lap();
    }

    /// Ends the verify phase: compared and checked.
    pub fn verified(&mut self) {
        self.phases.verify = self.clock.lap();
    }
}
