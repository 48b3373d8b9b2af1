//! Asset kinds: everything Lifeboat knows about one kind of asset lives in one module here, and
//! the engine's jobs (backup, restore, drill, live checks, lint, export) reach it only through
//! the [`Kind`] contract. [`kind_for`] is the one exhaustive match over the plan's asset types.
//!
//! # Adding a kind
//! 1. Its plan section: a variant of `lifeboat_plan::AssetSpec` and its parser.
//! 2. A module here with a struct holding the asset and its spec, implementing [`Kind`].
//! 3. One line in [`kind_for`].
//!
//! The conformance test (`crates/lifeboat-cli/tests/it/conformance.rs`) then runs the kind
//! through what every kind must do, once it is given a fixture there.

mod command;
mod contract;
mod docker_volume;
mod files;
mod job;
mod mysql;
mod pg_cluster;
mod postgres;
mod redis;
mod sqlite;

use lifeboat_plan::{AssetSpec, ResolvedAsset};

pub use contract::Description;
pub(crate) use contract::{Held, Kind};
pub(crate) use job::{Keeper, RestoreJob, SandboxJob};
pub(crate) use pg_cluster::Recovery;
pub use pg_cluster::{Compacted, PushOutcome, WalStatus};

use crate::EngineError;

/// The one exhaustive match over the plan's asset types.
pub(crate) fn kind_for(asset: &ResolvedAsset) -> Box<dyn Kind + '_> {
    match &asset.spec {
        AssetSpec::Postgres(spec) => Box::new(postgres::Postgres { asset, spec }),
        AssetSpec::PostgresCluster(spec) => Box::new(pg_cluster::Cluster { asset, spec }),
        AssetSpec::Mysql(spec) => Box::new(mysql::Mysql { asset, spec }),
        AssetSpec::Sqlite(spec) => Box::new(sqlite::Sqlite { asset, spec }),
        AssetSpec::Redis(spec) => Box::new(redis::Redis { asset, spec }),
        AssetSpec::Files(spec) => Box::new(files::Files { asset, spec }),
        AssetSpec::DockerVolume(spec) => Box::new(docker_volume::DockerVolume { asset, spec }),
        AssetSpec::Command(spec) => Box::new(command::Command { asset, spec }),
    }
}

/// Where `asset`'s data lives and which secrets it reads.
#[must_use]
pub fn describe(asset: &ResolvedAsset) -> Description {
    kind_for(asset).describe()
}

/// Restores a tree snapshot (a raw copy of a damaged target) of any kind's asset.
pub(crate) fn restore_raw_copy(job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
    files::restore_tree(job, None)
}

/// Writes `dest` through a hidden temporary file beside it, synced and renamed into place
/// once `write` succeeded; removed when it failed.
pub(crate) fn write_atomically(
    dest: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<u64, EngineError>,
) -> Result<u64, EngineError> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix: u32 = rand::random();
    let tmp = dir.join(format!(".lifeboat-{name}-{suffix:08x}.tmp"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| EngineError::io("create", &tmp, e))?;
        let n = write(&mut f)?;
        f.sync_all()
            .map_err(|e| EngineError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| EngineError::io("rename", dest, e))?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
