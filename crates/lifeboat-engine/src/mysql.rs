//! `mysql` assets: restore.

use lifeboat_core::Manifest;
use lifeboat_plan::{MysqlSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};

use crate::{EngineError, RestoreReport, RestoreRequest, jobs::Engine};

#[allow(clippy::too_many_arguments)]
pub(crate) fn restore(
    _engine: &Engine,
    _repo: &Repo,
    asset: &ResolvedAsset,
    _spec: &MysqlSpec,
    _snap: &SnapshotInfo,
    _manifest: Option<Manifest>,
    _req: &RestoreRequest,
    _report: &mut RestoreReport,
) -> Result<(), EngineError> {
    Err(EngineError::usage(
        format!(
            "restore asset {}: assets of type mysql are not supported by this version of Lifeboat yet",
            asset.name
        ),
        Some("use `lifeboat dump` to get the raw artifact"),
    ))
}
