//! Proving recoverability: restore a snapshot into a sandbox Lifeboat starts itself, compare
//! it with the manifest, run the plan's checks, and time each phase (`verify --restore`,
//! `drill`). Nothing here touches a live target.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use jiff::Timestamp;
use lifeboat_core::{Manifest, Secret};
use lifeboat_plan::{AssetSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::postgres::{Conn, DumpInput, DumpLayout, GLOBALS_ARTIFACT, PostgresTarget};
use serde::Serialize;

use crate::{EngineError, jobs::Engine, sandbox};

/// One plan check and what it gave.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    pub check: String,
    pub ok: bool,
    /// The query's answer or the command's output tail (or the error).
    pub output: String,
}

/// Time spent in each phase of a sandbox restore, in seconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Phases {
    /// Reading the snapshot's data out of the repository, checksums verified.
    pub fetch: f64,
    /// Starting the sandbox and loading the data into it.
    pub restore: f64,
    /// Comparing with the manifest and running the checks.
    pub verify: f64,
}

/// One asset restored into a sandbox and checked.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SandboxRestore {
    pub asset: String,
    pub kind: lifeboat_core::AssetKind,
    pub priority: lifeboat_core::Priority,
    pub snapshot: Option<String>,
    pub snapshot_time: Option<Timestamp>,
    pub phases: Phases,
    /// Wall time from the start of the fetch to a verified, usable copy (achieved RTO).
    pub rto_secs: f64,
    pub rto_target_secs: u64,
    /// Age of the restored data when the drill ran (achieved RPO).
    pub rpo_secs: Option<u64>,
    pub rpo_target_secs: u64,
    pub bytes: u64,
    /// What was compared with the manifest, e.g. `12 tables, 5000 rows as recorded`.
    pub compared: Option<String>,
    pub checks: Vec<CheckOutcome>,
    /// What went wrong; empty when the restore and every check succeeded.
    pub problems: Vec<String>,
    pub ok: bool,
    /// The targets missed by a restore that worked: `RTO target missed`, `RPO target missed`.
    #[serde(default)]
    pub missed: Vec<String>,
}

impl SandboxRestore {
    #[must_use]
    pub fn rto_met(&self) -> bool {
        self.rto_secs <= self.rto_target_secs as f64
    }

    #[must_use]
    pub fn rpo_met(&self) -> bool {
        self.rpo_secs.is_some_and(|a| a <= self.rpo_target_secs)
    }

    /// The targets a restore that worked missed, as every report format names them.
    #[must_use]
    pub fn missed_targets(&self) -> Vec<String> {
        if !self.ok {
            return Vec::new();
        }
        let mut missed = Vec::new();
        if !self.rto_met() {
            missed.push("RTO target missed".to_owned());
        }
        if !self.rpo_met() {
            missed.push("RPO target missed".to_owned());
        }
        missed
    }
}

/// What one kind's sandbox restore found, before timing and targets are added.
#[derive(Default)]
struct Found {
    bytes: u64,
    compared: Option<String>,
    checks: Vec<CheckOutcome>,
}

/// A phase clock: `lap` returns the seconds since the previous lap.
struct Clock(Instant);

impl Clock {
    fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let secs = now.duration_since(self.0).as_secs_f64();
        self.0 = now;
        secs
    }
}

/// A check's answer counts as passed unless it is false, zero, NULL or absent.
pub(crate) fn truthy(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("" | "f" | "false" | "0" | "NULL" | "FALSE") => false,
        Some(_) => true,
    }
}

pub(crate) fn compare_counts(
    what: &str,
    found: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
) -> Result<String, String> {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(*v))
        .take(5)
        .map(|(k, v)| {
            format!(
                "{k}: {} in the sandbox, {v} in the manifest",
                found
                    .get(k)
                    .map_or_else(|| "missing".to_owned(), u64::to_string)
            )
        })
        .collect();
    if wrong.is_empty() {
        let total: u64 = expected.values().sum();
        Ok(format!("{} {what}, {total} as recorded", expected.len()))
    } else {
        Err(format!("differs from the manifest: {}", wrong.join("; ")))
    }
}

impl Engine {
    /// Restores the newest snapshot (or `snapshot`) of each asset into a sandbox and checks
    /// it. `assets` empty means all, in priority order. A failure is recorded for its asset;
    /// the others still run.
    ///
    /// # Errors
    /// An unknown asset, or a repository that cannot be opened.
    pub fn verify_restore(
        &self,
        assets: &[String],
        snapshot: Option<&str>,
        parallel: usize,
    ) -> Result<Vec<SandboxRestore>, EngineError> {
        let mut chosen: Vec<&ResolvedAsset> = if assets.is_empty() {
            self.plan().assets.iter().collect()
        } else {
            assets
                .iter()
                .map(|a| self.asset(a))
                .collect::<Result<_, _>>()?
        };
        if snapshot.is_some() && chosen.len() != 1 {
            return Err(EngineError::usage(
                "--snapshot names one snapshot: give exactly one asset",
                Some("lifeboat verify --restore ASSET --snapshot ID"),
            ));
        }
        chosen.sort_by_key(|a| a.priority);
        let repo = self.open_primary()?;
        let _lock = repo.lock(lifeboat_repo::LockKind::Shared, "verify --restore")?;
        let snapshots = repo.snapshots()?;
        let run_one = |asset: &ResolvedAsset| {
            let snap = match snapshot {
                Some(id) => repo
                    .find_snapshot(&asset.name, Some(id))
                    .map(Some)
                    .map_err(|e| e.to_string()),
                None => Ok(snapshots
                    .iter()
                    .rev()
                    .find(|s| s.asset.as_deref() == Some(&asset.name) && !s.is_safety())
                    .cloned()),
            };
            sandbox_restore(&repo, asset, snap)
        };
        let workers = parallel.clamp(1, chosen.len().max(1));
        if workers == 1 {
            return Ok(chosen.iter().map(|a| run_one(a)).collect());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(asset) = chosen.get(i) else { break };
                        let r = run_one(asset);
                        results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((i, r));
                    }
                });
            }
        });
        let mut results = results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        results.sort_by_key(|(i, _)| *i);
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }
}

pub(crate) fn sandbox_restore(
    repo: &Repo,
    asset: &ResolvedAsset,
    snap: Result<Option<SnapshotInfo>, String>,
) -> SandboxRestore {
    let (snap, lookup) = match snap {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
    };
    let snap = snap.as_ref();
    let mut out = SandboxRestore {
        asset: asset.name.clone(),
        kind: asset.kind(),
        priority: asset.priority,
        snapshot: snap.map(|s| s.short_id.clone()),
        snapshot_time: snap.map(|s| s.time),
        phases: Phases::default(),
        rto_secs: 0.0,
        rto_target_secs: asset.rto.as_secs(),
        rpo_secs: snap
            .map(|s| u64::try_from(Timestamp::now().as_second() - s.time.as_second()).unwrap_or(0)),
        rpo_target_secs: asset.rpo.as_secs(),
        bytes: 0,
        compared: None,
        checks: Vec::new(),
        problems: Vec::new(),
        ok: false,
        missed: Vec::new(),
    };
    let Some(snap) = snap else {
        out.problems.push(
            lookup
                .unwrap_or_else(|| format!("asset {} has no snapshot to restore yet", asset.name)),
        );
        return out;
    };
    let started = Instant::now();
    let mut clock = Clock(started);
    let result = repo
        .read_manifest(snap)
        .map_err(|e| e.to_string())
        .and_then(|manifest| {
            let work = tempfile::Builder::new()
                .prefix(".lifeboat-drill-")
                .tempdir_in(lifeboat_core::spool_dir())
                .map_err(|e| format!("create a work directory: {e}"))?;
            restore_kind(
                repo,
                asset,
                snap,
                &manifest,
                work.path(),
                &mut clock,
                &mut out.phases,
            )
        });
    out.rto_secs = started.elapsed().as_secs_f64();
    match result {
        Ok(found) => {
            out.bytes = found.bytes;
            out.compared = found.compared;
            for c in found.checks.iter().filter(|c| !c.ok) {
                out.problems
                    .push(format!("check failed: {} ({})", c.check, c.output));
            }
            out.checks = found.checks;
        }
        Err(e) => out.problems.push(e),
    }
    out.ok = out.problems.is_empty();
    out.missed = out.missed_targets();
    out
}

/// Writes every artifact of the snapshot into `dir`, each checked against the manifest.
fn fetch(repo: &Repo, snap: &SnapshotInfo, manifest: &Manifest, dir: &Path) -> Result<u64, String> {
    let mut bytes = 0;
    for a in &manifest.artifacts {
        let path = dir.join(&a.name);
        let mut file =
            fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
        bytes += repo
            .dump_artifact(snap, manifest, &a.name, &mut file)
            .map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

fn only_artifact(manifest: &Manifest, dir: &Path) -> Result<PathBuf, String> {
    manifest
        .artifacts
        .first()
        .map(|a| dir.join(&a.name))
        .ok_or_else(|| "the snapshot has no artifact".to_owned())
}

/// Runs shell checks with `env` set; each passes when it exits 0.
pub(crate) fn shell_checks(
    checks: &[String],
    dir: &Path,
    env: &[(&str, String)],
) -> Vec<CheckOutcome> {
    checks
        .iter()
        .map(|check| {
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c").arg(check).current_dir(dir);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let result = run_check(cmd);
            match result {
                Ok(stdout) => CheckOutcome {
                    check: check.clone(),
                    ok: true,
                    output: tail(&stdout),
                },
                Err(e) => CheckOutcome {
                    check: check.clone(),
                    ok: false,
                    output: tail(&e.to_string()),
                },
            }
        })
        .collect()
}

/// How long one shell check may run: `$LIFEBOAT_CHECK_TIMEOUT` seconds, 300 by default. A
/// check that hangs must not hang the drill.
fn check_timeout() -> std::time::Duration {
    let secs = std::env::var("LIFEBOAT_CHECK_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(secs)
}

/// Runs one shell check to its end or its time limit (then its process group is killed).
fn run_check(cmd: std::process::Command) -> std::io::Result<String> {
    run_limited(cmd, Some(check_timeout()), "LIFEBOAT_CHECK_TIMEOUT")
}

/// Runs `cmd` to its end, or kills its process group once `limit` has passed (`why` names
/// where the limit comes from). Returns its stdout; a non-zero exit is an error carrying the
/// tail of its stderr.
pub(crate) fn run_limited(
    cmd: std::process::Command,
    limit: Option<std::time::Duration>,
    why: &str,
) -> std::io::Result<String> {
    let mut child = lifeboat_sources::process::spawn(cmd, false)?;
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut out) = child.child.stdout.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            let _ = tx.send(text);
        });
    }
    let started = Instant::now();
    while child.child.try_wait()?.is_none() {
        if let Some(limit) = limit
            && started.elapsed() > limit
        {
            // Dropping the child kills its process group, which also ends the reader.
            drop(child);
            return Err(std::io::Error::other(format!(
                "did not finish within {} s ({why})",
                limit.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A process the check left in the background would hold its output open: stop it.
    child.kill_group();
    let stdout = rx
        .recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_default();
    child.finish().map(|()| stdout)
}

pub(crate) fn tail(text: &str) -> String {
    let t = text.trim();
    let start = t.len().saturating_sub(300);
    let start = (start..t.len())
        .find(|i| t.is_char_boundary(*i))
        .unwrap_or(0);
    t[start..].to_owned()
}

pub(crate) fn sql_checks(
    checks: &[String],
    mut run: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Vec<CheckOutcome> {
    checks
        .iter()
        .map(|check| match run(check) {
            Ok(value) => CheckOutcome {
                check: check.clone(),
                ok: truthy(value.as_deref()),
                output: value.unwrap_or_else(|| "no rows".to_owned()),
            },
            Err(e) => CheckOutcome {
                check: check.clone(),
                ok: false,
                output: tail(&e),
            },
        })
        .collect()
}

#[allow(clippy::too_many_lines)]
fn restore_kind(
    repo: &Repo,
    asset: &ResolvedAsset,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    work: &Path,
    clock: &mut Clock,
    phases: &mut Phases,
) -> Result<Found, String> {
    let mut found = Found::default();
    match &asset.spec {
        AssetSpec::Files(_) => {
            let dest = work.join("restored");
            let summary = repo
                .restore_tree(snap, &dest, false)
                .map_err(|e| e.to_string())?;
            phases.restore = clock.lap();
            found.bytes = summary.bytes;
            if let Some(f) = &manifest.files {
                if summary.files != f.files || summary.bytes != f.bytes {
                    return Err(format!(
                        "restored {} files, {} bytes; the manifest says {} files, {} bytes",
                        summary.files, summary.bytes, f.files, f.bytes
                    ));
                }
                found.compared = Some(format!("{} files, {} bytes as recorded", f.files, f.bytes));
            }
            found.checks = shell_checks(
                &asset.checks,
                &dest,
                &[("LIFEBOAT_RESTORE_DIR", dest.display().to_string())],
            );
            phases.verify = clock.lap();
        }
        AssetSpec::Command(_) => {
            found.bytes = fetch(repo, snap, manifest, work)?;
            phases.fetch = clock.lap();
            let artifact = only_artifact(manifest, work)?;
            found.compared = Some(format!(
                "{} artifact(s), SHA-256 as recorded",
                manifest.artifacts.len()
            ));
            found.checks = shell_checks(
                &asset.checks,
                work,
                &[("LIFEBOAT_ARTIFACT", artifact.display().to_string())],
            );
            phases.verify = clock.lap();
        }
        AssetSpec::Sqlite(_) => {
            found.bytes = fetch(repo, snap, manifest, work)?;
            phases.fetch = clock.lap();
            let db = only_artifact(manifest, work)?;
            let facts = lifeboat_sources::sqlite::inspect(&db).map_err(|e| e.to_string())?;
            phases.restore = clock.lap();
            if facts.integrity != "ok" {
                return Err(format!("integrity check: {}", facts.integrity));
            }
            found.compared = Some(compare_counts("tables", &facts.tables, &manifest.tables)?);
            found.checks = sql_checks(&asset.checks, |sql| {
                lifeboat_sources::sqlite::query_first(&db, sql).map_err(|e| e.to_string())
            });
            phases.verify = clock.lap();
        }
        AssetSpec::Redis(_) => {
            found.bytes = fetch(repo, snap, manifest, work)?;
            phases.fetch = clock.lap();
            let rdb = only_artifact(manifest, work)?;
            let redis = sandbox::RedisSandbox::start(Some(&rdb)).map_err(|e| e.to_string())?;
            phases.restore = clock.lap();
            let keys =
                lifeboat_sources::resp::Client::connect("127.0.0.1", redis.port(), None, None)
                    .and_then(|mut c| c.keyspace())
                    .map_err(|e| format!("read the sandbox: {e}"))?;
            found.compared = Some(compare_counts("databases", &keys, &manifest.keys)?);
            found.checks = shell_checks(
                &asset.checks,
                work,
                &[
                    ("REDIS_URL", redis.url()),
                    ("LIFEBOAT_SANDBOX_URL", redis.url()),
                ],
            );
            phases.verify = clock.lap();
        }
        AssetSpec::Postgres(spec) => {
            found.bytes = fetch(repo, snap, manifest, work)?;
            phases.fetch = clock.lap();
            let pg = sandbox::PostgresSandbox::start(None).map_err(|e| e.to_string())?;
            let db = manifest
                .consistency
                .get("database")
                .cloned()
                .unwrap_or_else(|| asset.name.clone());
            let conn = Conn::parse(&pg.url("postgres"), None)?;
            let layout = DumpLayout::of(manifest)?;
            let mut server = PostgresTarget::connect(&asset.name, &conn, layout.pg_dump_major)
                .map_err(|e| e.to_string())?;
            let globals = work.join(GLOBALS_ARTIFACT);
            if globals.exists() {
                // The roles the dump's objects belong to; errors such as an existing role are
                // expected and harmless here.
                apply_sql_file(&pg, &globals);
            } else {
                server.keep_owners = false;
            }
            server
                .create(&db, &manifest.consistency, None)
                .map_err(|e| e.to_string())?;
            let input = if layout.directory {
                let dir = work.join("dump");
                fs::create_dir(&dir).map_err(|e| e.to_string())?;
                for a in manifest
                    .artifacts
                    .iter()
                    .filter(|a| a.name != GLOBALS_ARTIFACT)
                {
                    fs::rename(work.join(&a.name), dir.join(&a.name)).map_err(|e| e.to_string())?;
                }
                dir
            } else {
                work.join(&layout.dump)
            };
            server
                .load(&db, DumpInput::Path(&input), spec.jobs.max(1), &[])
                .map_err(|e| e.to_string())?;
            phases.restore = clock.lap();
            let counts = server.counts(&db, &[]).map_err(|e| e.to_string())?;
            found.compared = Some(compare_counts("tables", &counts, &manifest.tables)?);
            found.checks = sql_checks(&asset.checks, |sql| {
                pg.psql(&db, sql)
                    .map(|v| v.lines().next().map(str::to_owned))
                    .map_err(|e| e.reason)
            });
            server.close();
            phases.verify = clock.lap();
        }
        AssetSpec::Mysql(_) => {
            found.bytes = fetch(repo, snap, manifest, work)?;
            phases.fetch = clock.lap();
            let dump = only_artifact(manifest, work)?;
            let password = format!("{:016x}", rand::random::<u64>());
            let maria =
                sandbox::MariadbSandbox::start(Some(&password)).map_err(|e| e.to_string())?;
            let server = lifeboat_sources::mysql::MysqlServer {
                asset: asset.name.clone(),
                host: "127.0.0.1".to_owned(),
                port: Some(maria.port()),
                user: Some("root".to_owned()),
                password: Some(Secret::new(password)),
            };
            let db = manifest
                .source
                .rsplit('/')
                .next()
                .filter(|d| !d.is_empty())
                .unwrap_or(&asset.name)
                .to_owned();
            server
                .execute(
                    "",
                    &format!(
                        "CREATE DATABASE {}",
                        lifeboat_sources::mysql::sql_ident(&db)
                    ),
                )
                .map_err(|e| e.to_string())?;
            let mut objects = Vec::new();
            server
                .load(&db, |stdin| {
                    let mut split =
                        lifeboat_sources::mysql::DumpSplit::new(None).with_tables(stdin);
                    let mut file = fs::File::open(&dump).map_err(|e| e.to_string())?;
                    let n = std::io::copy(&mut file, &mut split).map_err(|e| e.to_string())?;
                    split.finish().map_err(|e| e.to_string())?;
                    objects = std::mem::take(&mut split.objects);
                    Ok::<u64, String>(n)
                })
                .map_err(|e| e.to_string())?;
            if !objects.iter().all(u8::is_ascii_whitespace) {
                server
                    .load(&db, |w| {
                        w.write_all(&objects).map(|()| objects.len() as u64)
                    })
                    .map_err(|e| e.to_string())?;
            }
            phases.restore = clock.lap();
            let counts = server.row_counts(&db).map_err(|e| e.to_string())?;
            found.compared = Some(compare_counts("tables", &counts, &manifest.tables)?);
            found.checks = sql_checks(&asset.checks, |sql| {
                server
                    .query(&db, sql)
                    .map(|rows| rows.into_iter().next().and_then(|r| r.into_iter().next()))
                    .map_err(|e| e.to_string())
            });
            phases.verify = clock.lap();
        }
    }
    Ok(found)
}

/// Feeds a SQL file to the sandbox's psql (stdin, so psql meta-commands work).
fn apply_sql_file(pg: &sandbox::PostgresSandbox, file: &Path) {
    let Ok(input) = fs::File::open(file) else {
        return;
    };
    let _ = std::process::Command::new(pg.bin_dir().join("psql"))
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .arg("-p")
        .arg(pg.port().to_string())
        .stdin(input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_answers() {
        assert!(truthy(Some("t")));
        assert!(truthy(Some("42")));
        assert!(!truthy(Some("f")));
        assert!(!truthy(Some("0")));
        assert!(!truthy(None));
    }

    #[test]
    fn counts_compare_with_the_manifest() {
        let expected = BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 0)]);
        assert_eq!(
            compare_counts("tables", &expected, &expected).unwrap(),
            "2 tables, 2 as recorded"
        );
        let found = BTreeMap::from([("a".to_owned(), 1)]);
        let err = compare_counts("tables", &found, &expected).unwrap_err();
        assert!(
            err.contains("a: 1 in the sandbox, 2 in the manifest"),
            "{err}"
        );
        assert!(err.contains("b: missing"), "{err}");
    }
}
