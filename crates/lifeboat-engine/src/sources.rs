//! The one place that turns a plan's asset into its source: an exhaustive match over kinds.

use lifeboat_plan::{AssetSpec, Redact, ResolvedAsset};
use lifeboat_sources::{
    Source, SourceError, command::CommandSource, files::FilesSource, sqlite::SqliteSource,
};

pub(crate) fn source_for(asset: &ResolvedAsset) -> Result<Box<dyn Source>, SourceError> {
    let unsupported = |kind: &str| SourceError::Unsupported {
        asset: asset.name.clone(),
        reason: format!("assets of type {kind} are not supported by this version of Lifeboat yet"),
    };
    match &asset.spec {
        AssetSpec::Files(f) => Ok(Box::new(files_source(&asset.name, f))),
        AssetSpec::Command(c) => Ok(Box::new(command_source(&asset.name, c))),
        AssetSpec::Postgres(_) => Err(unsupported("postgres")),
        AssetSpec::Sqlite(s) => Ok(Box::new(SqliteSource {
            asset: asset.name.clone(),
            path: s.path.clone(),
        })),
        AssetSpec::Redis(_) => Err(unsupported("redis")),
        AssetSpec::Mysql(_) => Err(unsupported("mysql")),
    }
}

pub(crate) fn files_source(name: &str, f: &lifeboat_plan::FilesSpec) -> FilesSource {
    FilesSource {
        asset: name.to_owned(),
        paths: f.paths.clone(),
        exclude: f.exclude.clone(),
        one_file_system: f.one_file_system,
        redact_values: f.redact == Redact::Values,
    }
}

pub(crate) fn command_source(name: &str, c: &lifeboat_plan::CommandSpec) -> CommandSource {
    CommandSource {
        asset: name.to_owned(),
        backup: c.backup.clone(),
        restore: c.restore.clone(),
        filename: c.filename.clone(),
        workdir: c.workdir.clone(),
    }
}
