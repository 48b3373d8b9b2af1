//! `restore`: the engine's side of every kind's restore. It finds the snapshot, locks the
//! repository, asks for confirmation, and hands the kind a prepared job; the kind plans its
//! actions (`--dry-run` prints them) and applies them so that a target is never left
//! half-overwritten. The safety copy the kind asks for is taken here.

use std::path::PathBuf;

use lifeboat_plan::ResolvedAsset;
use lifeboat_repo::{Repo, SAFETY_TAG};

use crate::{
    EngineError,
    actions::{RecoveryTarget, RestoreReport, RestoreRequest, Safety},
    engine::Engine,
    kinds::{Keeper, Recovery, RestoreJob, kind_for, restore_raw_copy},
};

impl Engine {
    /// Restores an asset: prints the plan with `dry_run`, otherwise applies it.
    ///
    /// Restoring over the original needs `yes` and takes a safety snapshot of the target first.
    /// Files are restored beside the target and swapped in by rename, so a failure never leaves
    /// a target half-overwritten.
    ///
    /// # Errors
    /// Missing `--yes`, unknown asset or snapshot, a failed safety snapshot, a failed restore.
    pub fn restore(&self, req: &RestoreRequest) -> Result<RestoreReport, EngineError> {
        let asset = self.asset(&req.asset)?;
        let repo = self.open_named_or_primary(req.repository.as_deref())?;
        // Shared: prune waits until the restore has read what it needs.
        let _lock = repo.lock(
            lifeboat_repo::LockKind::Shared,
            &format!("restore {}", asset.name),
        )?;
        let snap = self.pick_snapshot(
            &repo,
            &asset.name,
            req.snapshot.as_deref(),
            req.before.as_deref(),
        )?;
        let manifest = if snap.asset.is_some() {
            Some(repo.read_manifest(&snap)?)
        } else {
            None
        };
        let in_place = req.to.is_none();
        if in_place && !req.dry_run && !req.yes {
            return Err(EngineError::usage(
                format!("restore asset {} over its original target", asset.name),
                Some(
                    "add --yes to confirm (a safety snapshot is taken first), --to PATH to restore elsewhere, or --dry-run to see the plan",
                ),
            ));
        }
        let report = RestoreReport {
            asset: asset.name.clone(),
            snapshot: snap.id.clone(),
            snapshot_time: snap.time,
            dry_run: req.dry_run,
            actions: Vec::new(),
            safety_snapshot: None,
            files: None,
            bytes: 0,
            kept: None,
            keys: None,
            tables: None,
            kept_database: None,
            damaged: None,
            recovered_to: None,
            delta: None,
        };
        // A raw copy of a damaged target is a tree of plain files, whatever the asset's kind:
        // it goes back the way a files asset does.
        let raw_copy = snap.kind == Some(lifeboat_core::AssetKind::Files)
            && asset.kind() != lifeboat_core::AssetKind::Files;
        let keeper = EngineKeeper {
            engine: self,
            repo: &repo,
        };
        let recovery = self.resolve_recovery(asset, req.recovery.as_ref())?;
        if req.delta && !kind_for(asset).recovers_to_a_point() {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: --delta is for postgres-cluster assets",
                    asset.name
                ),
                Some("restore this asset without --delta"),
            ));
        }
        let mut job = RestoreJob {
            asset,
            repo: &repo,
            snap: &snap,
            manifest,
            req,
            recovery,
            report,
            keeper: &keeper,
        };
        if raw_copy {
            restore_raw_copy(&mut job)?;
        } else {
            kind_for(asset).restore(&mut job)?;
        }
        Ok(job.report)
    }
}

impl Engine {
    /// `--time`, `--lsn`, `--xid`, `--name` or `--latest`, checked and resolved; only a
    /// cluster recovers to a point.
    fn resolve_recovery(
        &self,
        asset: &ResolvedAsset,
        target: Option<&RecoveryTarget>,
    ) -> Result<Option<Recovery>, EngineError> {
        let Some(target) = target else {
            return Ok(None);
        };
        if !kind_for(asset).recovers_to_a_point() {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: --time, --lsn, --xid, --name and --latest are for postgres-cluster assets",
                    asset.name
                ),
                Some("pick a snapshot of this asset with --snapshot ID or --before TIME"),
            ));
        }
        Ok(Some(match target {
            RecoveryTarget::Latest => Recovery::Latest,
            RecoveryTarget::Time(t) => Recovery::Time(self.parse_time(t)?),
            RecoveryTarget::Lsn(l) => {
                Recovery::Lsn(lifeboat_core::wal::Lsn::parse(l).ok_or_else(|| {
                    EngineError::usage(
                        format!("read the LSN {l:?}"),
                        Some("write it as PostgreSQL prints it, e.g. 0/3000060"),
                    )
                })?)
            }
            RecoveryTarget::Xid(x) => {
                if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(EngineError::usage(
                        format!("read the transaction id {x:?}"),
                        Some("give the number txid_current() returned, e.g. --xid 7413"),
                    ));
                }
                Recovery::Xid(x.clone())
            }
            RecoveryTarget::Name(n) => Recovery::Name(n.clone()),
        }))
    }
}

/// The engine keeping what a kind's restore replaces, in the repository restored from.
struct EngineKeeper<'a> {
    engine: &'a Engine,
    repo: &'a Repo,
}

impl Keeper for EngineKeeper<'_> {
    fn safety_copy(
        &self,
        asset: &ResolvedAsset,
        raw: &[PathBuf],
        kept: Option<String>,
    ) -> Result<Safety, EngineError> {
        self.engine.safety_copy(self.repo, asset, raw, kept)
    }

    fn safety_snapshot(&self, asset: &ResolvedAsset) -> Result<String, EngineError> {
        let outcome = self
            .engine
            .backup_one(self.repo, asset, Some(SAFETY_TAG), None)?;
        Ok(outcome.snapshot.id)
    }
}
