//! A scenario's `check` step on a live target: the asset as it is now, compared with a
//! snapshot's manifest (rows per table, keys per database, files and bytes), then the asset's
//! own `checks`. The comparisons and checks are the drill's (`drill.rs`); only the target
//! differs.

use std::{collections::BTreeMap, fs, path::Path};

use lifeboat_core::Manifest;
use lifeboat_plan::{AssetSpec, ResolvedAsset};

use crate::{
    EngineError,
    drill::{CheckOutcome, compare_counts, shell_checks, sql_checks},
    jobs::Engine,
};

/// What a live check found.
#[derive(Debug, Default)]
pub(crate) struct LiveCheck {
    /// What was compared with the manifest, e.g. `3 tables, 1200 rows as recorded`.
    pub compared: Option<String>,
    /// Why the live target differs from the manifest; a failure only when `strict`.
    pub difference: Option<String>,
    pub checks: Vec<CheckOutcome>,
}

impl LiveCheck {
    /// Problems that fail the step: a difference when the target was just restored from the
    /// manifest's snapshot, and every failed check.
    pub fn problems(&self, strict: bool) -> Vec<String> {
        let mut out = Vec::new();
        if strict && let Some(d) = &self.difference {
            out.push(d.clone());
        }
        for c in self.checks.iter().filter(|c| !c.ok) {
            out.push(format!("check failed: {} ({})", c.check, c.output));
        }
        out
    }
}

/// Counts of `found` against `expected`: exactly, or (Redis, where a restore adds keys and
/// removes none) at least as many per database.
fn compare(
    what: &str,
    found: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
    at_least: bool,
    out: &mut LiveCheck,
) {
    let result = if at_least {
        let short: Vec<String> = expected
            .iter()
            .filter(|(k, v)| found.get(*k).copied().unwrap_or(0) < **v)
            .take(5)
            .map(|(k, v)| {
                format!(
                    "{k}: {} live, {v} in the snapshot",
                    found.get(k).unwrap_or(&0)
                )
            })
            .collect();
        if short.is_empty() {
            let total: u64 = expected.values().sum();
            Ok(format!(
                "{} {what}, at least the {total} recorded",
                expected.len()
            ))
        } else {
            Err(format!("fewer than in the snapshot: {}", short.join("; ")))
        }
    } else {
        compare_counts(what, found, expected).map_err(|e| e.replace("in the sandbox", "live"))
    };
    match result {
        Ok(c) => out.compared = Some(c),
        Err(d) => out.difference = Some(d),
    }
}

impl Engine {
    /// Checks `asset` where it lives. `manifest` is the snapshot to compare with (none: only
    /// the checks run).
    pub(crate) fn check_live(
        &self,
        asset: &ResolvedAsset,
        manifest: Option<&Manifest>,
    ) -> Result<LiveCheck, EngineError> {
        let mut out = LiveCheck::default();
        let base = &self.plan().base_dir;
        let fail = |e: String| EngineError::usage(format!("check asset {}: {e}", asset.name), None);
        match &asset.spec {
            AssetSpec::Postgres(spec) => {
                let source = crate::postgres::source(&asset.name, spec)?;
                let db = source.conn.database();
                let server = lifeboat_sources::postgres::PostgresTarget::connect(
                    &asset.name,
                    &source.conn,
                    0,
                )?;
                if let Some(m) = manifest {
                    let counts = server.counts(&db, &[])?;
                    compare("tables", &counts, &m.tables, false, &mut out);
                }
                let psql = server.client.program("psql");
                let conn = source.conn.clone();
                server.close();
                out.checks = sql_checks(&asset.checks, |sql| {
                    let mut s = lifeboat_sources::postgres::Session::open(&psql, &conn)
                        .map_err(|e| e.to_string())?;
                    let rows = s.query(sql);
                    s.close();
                    rows.map(|r| r.into_iter().next().and_then(|r| r.into_iter().next()))
                });
            }
            AssetSpec::Mysql(spec) => {
                let source = crate::sources::mysql_source(&asset.name, spec)?;
                if let Some(m) = manifest {
                    let counts = source.server.row_counts(&source.database)?;
                    compare("tables", &counts, &m.tables, false, &mut out);
                }
                out.checks = sql_checks(&asset.checks, |sql| {
                    source
                        .server
                        .query(&source.database, sql)
                        .map(|rows| rows.into_iter().next().and_then(|r| r.into_iter().next()))
                        .map_err(|e| e.to_string())
                });
            }
            AssetSpec::Sqlite(spec) => {
                let facts = lifeboat_sources::sqlite::inspect(&spec.path)
                    .map_err(|e| fail(format!("read {}: {e}", spec.path.display())))?;
                if facts.integrity != "ok" {
                    out.difference = Some(format!("integrity check: {}", facts.integrity));
                } else if let Some(m) = manifest {
                    compare("tables", &facts.tables, &m.tables, false, &mut out);
                }
                out.checks = sql_checks(&asset.checks, |sql| {
                    lifeboat_sources::sqlite::query_first(&spec.path, sql)
                        .map_err(|e| e.to_string())
                });
            }
            AssetSpec::Redis(spec) => {
                let target = crate::sources::redis_source(&asset.name, spec)?;
                let mut client = lifeboat_sources::resp::Client::connect(
                    &target.host,
                    target.port,
                    target.username.as_deref(),
                    target.password.as_ref().map(lifeboat_core::Secret::expose),
                )
                .map_err(|e| fail(format!("connect to Redis {}: {e}", spec.url)))?;
                let keys = client
                    .keyspace()
                    .map_err(|e| fail(format!("read Redis {}: {e}", spec.url)))?;
                if let Some(m) = manifest {
                    compare("databases", &keys, &m.keys, true, &mut out);
                }
                // The URL without its password; a password reaches redis-cli by REDISCLI_AUTH.
                let mut env = vec![("REDIS_URL", spec.url.to_string())];
                if let Some(pw) = &target.password {
                    env.push(("REDISCLI_AUTH", pw.expose().to_owned()));
                }
                out.checks = shell_checks(&asset.checks, base, &env);
            }
            AssetSpec::Files(spec) => {
                let (files, bytes) = count_files(&spec.paths);
                if let Some(f) = manifest.and_then(|m| m.files.as_ref()) {
                    if files == f.files && bytes == f.bytes {
                        out.compared =
                            Some(format!("{} files, {} bytes as recorded", f.files, f.bytes));
                    } else {
                        out.difference = Some(format!(
                            "{files} files, {bytes} bytes live; the snapshot has {} files, {} bytes",
                            f.files, f.bytes
                        ));
                    }
                }
                let paths: Vec<String> =
                    spec.paths.iter().map(|p| p.display().to_string()).collect();
                out.checks =
                    shell_checks(&asset.checks, base, &[("LIFEBOAT_PATHS", paths.join(":"))]);
            }
            AssetSpec::Command(spec) => {
                // What the backup command gives now: the live service's own export, checked
                // as a drill checks the stored one.
                let work = tempfile::Builder::new()
                    .prefix(".lifeboat-check-")
                    .tempdir_in(lifeboat_core::spool_dir())
                    .map_err(|e| fail(format!("create a work directory: {e}")))?;
                let artifact = work.path().join(&spec.filename);
                let file = fs::File::create(&artifact)
                    .map_err(|e| EngineError::io("create", &artifact, e))?;
                let mut cmd = std::process::Command::new("sh");
                cmd.arg("-c")
                    .arg(&spec.backup)
                    .current_dir(&spec.workdir)
                    .stdout(file);
                let status = cmd
                    .status()
                    .map_err(|e| fail(format!("run the backup command: {e}")))?;
                if !status.success() {
                    out.difference = Some(format!("the backup command failed ({status})"));
                } else {
                    let size = fs::metadata(&artifact).map_or(0, |m| m.len());
                    out.compared = Some(format!("the backup command gave {size} bytes"));
                }
                out.checks = shell_checks(
                    &asset.checks,
                    work.path(),
                    &[("LIFEBOAT_ARTIFACT", artifact.display().to_string())],
                );
            }
        }
        Ok(out)
    }
}

/// Regular files and their bytes under `paths` (symlinks not followed).
fn count_files(paths: &[std::path::PathBuf]) -> (u64, u64) {
    fn walk(p: &Path, acc: &mut (u64, u64)) {
        let Ok(meta) = fs::symlink_metadata(p) else {
            return;
        };
        if meta.is_file() {
            acc.0 += 1;
            acc.1 += meta.len();
        } else if meta.is_dir()
            && let Ok(entries) = fs::read_dir(p)
        {
            for e in entries.flatten() {
                walk(&e.path(), acc);
            }
        }
    }
    let mut acc = (0, 0);
    for p in paths {
        walk(p, &mut acc);
    }
    acc
}
