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

mod asset;
mod config;
mod document;
mod error;
mod expand;
mod key_path;
mod name;
mod notify;
mod plan;
mod repository;
mod resolve;
mod retention;
mod scenario;
mod schedule;
mod secret_source;
mod secrets;
mod shape;
mod suggest;

use std::path::Path;

pub use asset::{
    AssetSpec, CommandSpec, FilesSpec, MysqlSpec, PostgresSpec, Redact, RedisSpec, ResolvedAsset,
    SqliteSpec,
};
pub use error::PlanError;
pub use name::{NameError, validate_name};
pub use notify::{NotifyEvent, NotifyKind, ResolvedNotify};
pub use plan::ResolvedPlan;
pub use repository::{PasswordSource, ResolvedRepository, S3CredentialVars};
pub use retention::Retention;
pub use scenario::{ResolvedScenario, Step};
pub use schedule::Schedule;
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
