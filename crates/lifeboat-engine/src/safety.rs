//! The safety copy a restore takes of a live target before it replaces it, and what happens
//! when that target is too damaged to be read consistently: its raw bytes are kept instead,
//! and the restore goes on. A disaster-recovery tool must not refuse exactly when the target
//! is broken.

use std::path::PathBuf;

use lifeboat_plan::{AssetSpec, FilesSpec, ResolvedAsset};
use lifeboat_repo::{Repo, RepoError, SAFETY_TAG};

use crate::{
    EngineError,
    actions::{DamagedTarget, Safety},
    engine::Engine,
};

/// Whether a failed safety backup failed because of the live target (a damaged database, a
/// server that does not answer, a dump that errors), not because of the repository.
fn target_failed(e: &EngineError) -> bool {
    match e {
        EngineError::Source(_) => true,
        EngineError::Repo(RepoError::SourceFailed { detail, .. }) => !detail.contains("spool file"),
        // This host's own files (the spool), the repository, the plan: not the target.
        EngineError::Io { .. }
        | EngineError::Repo(_)
        | EngineError::Usage { .. }
        | EngineError::Password { .. } => false,
    }
}

/// The first line of an error, cut to a length a log line can carry.
fn reason_of(e: &EngineError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let mut cut: String = first.chars().take(300).collect();
    if cut.len() < first.len() {
        cut.push('…');
    }
    cut
}

impl Engine {
    /// Takes the safety snapshot of `asset`'s live target before a restore replaces it.
    ///
    /// When the consistent read fails because of the target itself, the files in `raw` that
    /// exist (a SQLite database with its `-wal` and `-shm`, a Redis data directory's files) are
    /// stored as they are, as a `files` snapshot of the asset tagged `safety`, and the restore
    /// goes on; `kept` names what else stays of the old content (a database renamed aside).
    /// The outcome is logged in one line.
    ///
    /// # Errors
    /// A failure of the repository (it cannot be written, it is locked): then nothing of the
    /// target may be replaced, and the error says how to go on.
    pub(crate) fn safety_copy(
        &self,
        repo: &Repo,
        asset: &ResolvedAsset,
        raw: &[PathBuf],
        kept: Option<String>,
    ) -> Result<Safety, EngineError> {
        let err = match self.backup_one(repo, asset, Some(SAFETY_TAG), None) {
            Ok(outcome) => {
                let tree = matches!(
                    asset.kind(),
                    lifeboat_core::AssetKind::Files | lifeboat_core::AssetKind::DockerVolume
                );
                if !tree || outcome.manifest.warnings.is_empty() {
                    return Ok(Safety::Snapshot(outcome.snapshot.id));
                }
                // Files: whatever could be read is in the snapshot; say what could not.
                let warnings = &outcome.manifest.warnings;
                let damaged = DamagedTarget {
                    reason: format!(
                        "{} path(s) could not be read, first: {}",
                        warnings.len(),
                        warnings[0]
                    ),
                    raw_snapshot: Some(outcome.snapshot.id),
                    kept,
                };
                tracing::warn!("asset {}: {}; restoring", asset.name, damaged.line());
                return Ok(Safety::Damaged(damaged));
            }
            Err(e) => e,
        };
        if !target_failed(&err) {
            return Err(EngineError::usage(
                format!("take safety snapshot of asset {}: {err}", asset.name),
                Some(&err.hint().unwrap_or_else(|| {
                    "fix the repository, or pass --skip-safety-snapshot to restore without a safety snapshot".to_owned()
                })),
            ));
        }
        let reason = reason_of(&err);
        let existing: Vec<PathBuf> = raw
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .cloned()
            .collect();
        let mut raw_snapshot = None;
        if !existing.is_empty() {
            let spec = FilesSpec {
                paths: existing,
                exclude: Vec::new(),
                one_file_system: false,
                redact: lifeboat_plan::Redact::None,
            };
            let raw_asset = ResolvedAsset {
                spec: AssetSpec::Files(spec),
                ..asset.clone()
            };
            match self.backup_one(repo, &raw_asset, Some(SAFETY_TAG), None) {
                Ok(outcome) => raw_snapshot = Some(outcome.snapshot.id),
                Err(e) if target_failed(&e) => {
                    tracing::warn!(
                        "asset {}: its raw bytes could not be read either: {}",
                        asset.name,
                        reason_of(&e)
                    );
                }
                Err(e) => {
                    return Err(EngineError::usage(
                        format!(
                            "asset {}: the live target is damaged ({reason}), and keeping its raw bytes failed: {e}",
                            asset.name
                        ),
                        Some(
                            "fix the repository and restore again, or pass --skip-safety-snapshot to restore without keeping anything",
                        ),
                    ));
                }
            }
        }
        let damaged = DamagedTarget {
            reason,
            raw_snapshot,
            kept,
        };
        tracing::warn!("asset {}: {}; restoring", asset.name, damaged.line());
        Ok(Safety::Damaged(damaged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_failures_stop_a_restore_and_target_failures_do_not() {
        let repo = EngineError::Repo(RepoError::SourceFailed {
            asset: "db".into(),
            detail: "write spool file: No space left on device".into(),
        });
        assert!(!target_failed(&repo));
        let dump = EngineError::Repo(RepoError::SourceFailed {
            asset: "db".into(),
            detail: "pg_dump exited with 1: invalid page in block 0".into(),
        });
        assert!(target_failed(&dump));
        assert!(!target_failed(&EngineError::usage("locked", None)));
    }
}
