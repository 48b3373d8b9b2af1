//! Lifeboat's plan file: `lifeboat.toml` read into validated [`ResolvedPlan`].
//!
//! Three layers, as in the rest of Lifeboat's configuration:
//! 1. the file model (`config`): serde types that mirror the TOML, every table denying
//!    unknown keys;
//! 2. validation: clear-text secrets refused and `${VAR}` expanded on the raw tree, the keys
//!    of tagged tables checked, then every value checked where it is resolved;
//! 3. the `Resolved*` types: defaults applied, references checked, paths absolute.
//!
//! Every error is a [`PlanError`] naming the file, line, column and full key path. Nothing
//! here does I/O beyond reading the plan file; paths are resolved without touching the disk.

// PlanError is ~130 bytes of public fields. It is built at most once per load, on the way out
// to the user; boxing it everywhere would cost clarity for no measurable gain.
#![allow(
    clippy::result_large_err,
    reason = "PlanError is cold and its fields are the API"
)]

mod asset;
mod config;
mod dashboard;
mod document;
mod error;
mod expand;
mod key_path;
mod name;
mod notify;
mod plan;
#[cfg(test)]
mod reference;
mod repository;
mod resolve;
mod scenario;
mod schedule;
mod schedules;
mod secret_source;
mod secrets;
mod shape;
mod suggest;

use std::path::Path;

pub use asset::{
    AssetSpec, CommandSpec, DockerVolumeSpec, FilesSpec, MysqlSpec, PostgresClusterSpec,
    PostgresSpec, Redact, RedisSpec, ResolvedAsset, SqliteSpec, WalMode, is_docker_name,
};
pub use dashboard::{DashboardUser, Login, ResolvedDashboard, Role};
pub use error::PlanError;
pub use expand::expand_now;
pub use lifeboat_core::{AnomalyThresholds, Retention};
pub use name::{NameError, validate_name};
pub use notify::{EmailSettings, NotifyEvent, NotifyKind, ResolvedNotify};
pub use plan::ResolvedPlan;
pub use repository::{PasswordSource, ResolvedRepository, S3CredentialVars};
pub use scenario::{ResolvedScenario, Step};
pub use schedule::{Schedule, ScheduleZone};
pub use schedules::ResolvedSchedules;
pub use secret_source::SecretSource;

/// Reads and resolves the plan file at `path`.
pub fn load(path: &Path) -> Result<ResolvedPlan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let err = PlanError::new(path, format!("read plan file: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            err.with_hint("write a lifeboat.toml, or point --config or LIFEBOAT_CONFIG at one")
        } else {
            err
        }
    })?;
    parse(&text, path)
}

/// Resolves a plan from `text`. `path` names the file in errors, and relative paths in the
/// plan resolve against its directory. `${VAR}` is expanded from the process environment.
pub fn parse(text: &str, path: &Path) -> Result<ResolvedPlan, PlanError> {
    parse_with_env(text, path, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment given as a function, so tests need not change the process'.
pub(crate) fn parse_with_env(
    text: &str,
    path: &Path,
    env: expand::Env<'_>,
) -> Result<ResolvedPlan, PlanError> {
    let mut doc = document::Document::parse(text, path)?;
    // Secrets first, on the raw text: no later message may echo a value that is a secret.
    secrets::check(&doc)?;
    expand::expand(&mut doc, env)?;
    shape::check(&doc)?;
    let config = config::deserialize(&doc)?;
    plan::resolve(&doc, &config, plan::base_dir(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DB_HOST" => Some("db.internal".to_owned()),
            "PGPW" => Some("hunter2".to_owned()),
            _ => None,
        }
    }

    const PLAN: &str = "version = 1\n[plan]\nname = \"t\"\n[assets.db]\ntype = \"postgres\"\n";

    #[test]
    fn expands_variables_from_the_given_environment() {
        let text = format!("{PLAN}url = \"postgres://app@${{DB_HOST}}:5432/app\"\n");
        let plan = parse_with_env(&text, Path::new("/p/lifeboat.toml"), &env).unwrap();
        let AssetSpec::Postgres(pg) = &plan.assets[0].spec else {
            panic!("{:?}", plan.assets[0].spec)
        };
        assert_eq!(pg.url.expose(), "postgres://app@db.internal:5432/app");

        let text = format!("{PLAN}url = \"postgres://app@${{NOPE}}/app\"\n");
        let e = parse_with_env(&text, Path::new("/p/lifeboat.toml"), &env).unwrap_err();
        assert_eq!(e.key_path, "assets.db.url");
        assert_eq!(e.message, "environment variable NOPE is not set");
    }

    #[test]
    fn a_password_from_a_variable_is_never_printed() {
        // Not in the file, so allowed; but the resolved URL holds it, and must not show it.
        let text = format!("{PLAN}url = \"postgres://app:${{PGPW}}@db/app\"\n");
        let plan = parse_with_env(&text, Path::new("/p/lifeboat.toml"), &env).unwrap();
        let AssetSpec::Postgres(pg) = &plan.assets[0].spec else {
            panic!()
        };
        assert_eq!(pg.url.expose(), "postgres://app:hunter2@db/app");
        assert!(!format!("{plan:?}").contains("hunter2"));
        assert_eq!(pg.url.to_string(), "postgres://app:***@db/app");

        // A URL that then fails to parse is not quoted either.
        let text = format!("{PLAN}url = \"postgres://app:${{PGPW}}@db:port/app\"\n");
        let e = parse_with_env(&text, Path::new("/p/lifeboat.toml"), &env).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
