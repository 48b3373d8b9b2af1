//! `postgres` assets: a database dumped with `pg_dump`; restored into another database, or
//! over the original through a new database that is loaded and checked before it is renamed
//! into place.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use lifeboat_core::Manifest;
use lifeboat_plan::{PostgresSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::{
    Source, SourceError,
    postgres::{Conn, DumpInput, DumpLayout, GLOBALS_ARTIFACT, PostgresSource, PostgresTarget},
};

use super::{
    contract::{Description, Kind, Lint},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, compare_counts, compare_live, sql_checks},
    sandbox,
};

pub(super) struct Postgres<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a PostgresSpec,
}

impl Kind for Postgres<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(source(&self.asset.name, self.spec)?))
    }

    #[allow(clippy::too_many_lines)]
    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        let (asset, spec) = (self.asset, self.spec);
        let (repo, snap, req) = (job.repo, job.snap, job.req);
        let manifest = job.manifest.take().ok_or_else(|| {
            EngineError::usage(
                format!("snapshot {} was not written by Lifeboat", snap.short_id),
                None,
            )
        })?;
        let original = conn_for(spec)
            .map_err(|e| EngineError::usage(format!("asset {}: {e}", asset.name), None))?;
        let target = match &req.to {
            Some(to) => {
                Conn::parse(&to.to_string_lossy(), original.password.clone()).map_err(|e| {
                    EngineError::usage(
                        format!(
                            "restore asset {}: --to {}: {e}",
                            asset.name,
                            lifeboat_core::redact_url(&to.to_string_lossy())
                        ),
                        Some("give a database URL: --to postgres://user@host:port/newdb"),
                    )
                })?
            }
            None => original.clone(),
        };
        let in_place = target.label() == original.label();
        if in_place && !req.yes && !req.dry_run {
            return Err(EngineError::usage(
                format!("restore asset {} over its original database", asset.name),
                Some(
                    "add --yes to confirm (the database is kept under another name), or --to postgres://…/newdb to restore beside it",
                ),
            ));
        }
        if in_place && !req.tables.is_empty() {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: --table restores into another database",
                    asset.name
                ),
                Some(
                    "add --to postgres://user@host:port/recovered, then copy the rows you need back",
                ),
            ));
        }
        let facts = &manifest.consistency;
        let layout = DumpLayout::of(&manifest)
            .map_err(|e| EngineError::usage(format!("snapshot {}: {e}", snap.short_id), None))?;
        let (directory, dump_artifact, dump_major) =
            (layout.directory, layout.dump, layout.pg_dump_major);
        let mut server = PostgresTarget::connect(&asset.name, &target, dump_major)?;
        let db = target.database();
        let stamp = jiff::Timestamp::now().as_second();
        // Two restores within a second (a restore, then undoing it) must not meet on a name.
        let mut unused = |suffix: &str| -> Result<String, EngineError> {
            for n in 1..100 {
                let extra = if n == 1 {
                    String::new()
                } else {
                    format!("_{n}")
                };
                let name = derived_name(&db, &format!("{suffix}{extra}"));
                if !server.exists(&name)? {
                    return Ok(name);
                }
            }
            Err(EngineError::usage(
                format!(
                    "restore asset {}: no free database name for {db}{suffix}",
                    asset.name
                ),
                Some("drop old <db>_lifeboat_* databases"),
            ))
        };
        let kept = unused(&format!("_lifeboat_old_{stamp}"))?;
        let scratch = unused(&format!("_lifeboat_{stamp}"))?;
        let load_into = if in_place {
            scratch
        } else {
            if server.exists(&db)? {
                return Err(EngineError::usage(
                    format!(
                        "restore asset {} into {}: the database exists",
                        asset.name,
                        target.label()
                    ),
                    Some("choose a new database name in --to; Lifeboat creates it"),
                ));
            }
            db.clone()
        };
        let live_exists = in_place && server.exists(&db)?;
        let load_label = target.with_database(&load_into).label();
        job.plan(RestoreAction::CreateDatabase {
            target: load_label.clone(),
        });
        job.plan(RestoreAction::LoadDump {
            artifact: dump_artifact.clone(),
            target: load_label.clone(),
        });
        job.plan(RestoreAction::CheckCounts {
            target: load_label.clone(),
        });
        let safety = live_exists && !req.skip_safety_snapshot;
        if safety {
            job.plan_safety_copy();
        }
        if in_place {
            job.plan(RestoreAction::SwapDatabase {
                restored: load_into.clone(),
                target: db.clone(),
                kept: kept.clone(),
            });
        }
        if req.dry_run {
            server.close();
            return Ok(());
        }

        let owner = if in_place { server.owner(&db)? } else { None };
        // Registered first: an interrupt during CREATE DATABASE must drop it too.
        let undo = crate::interrupt::undo_on_interrupt(server.dropper(&load_into));
        server.create(&load_into, facts, owner.as_deref())?;
        // From here on, the database being loaded is Lifeboat's: dropped again on any failure.
        let loaded = load_and_check(
            repo,
            snap,
            &manifest,
            &server,
            &load_into,
            &dump_artifact,
            directory,
            spec.jobs.max(1),
            &req.tables,
        )
        .and_then(|(bytes, counts)| {
            if safety {
                // A database pg_dump cannot read stays whole under its kept name after the swap:
                // no logical safety dump, but nothing of it is lost.
                let note = format!("database {kept} (no logical safety dump could be taken)");
                job.safety_copy(&[], Some(note))?;
            }
            Ok((bytes, counts))
        });
        let (bytes, counts) = match loaded {
            Ok(v) => v,
            Err(e) => {
                let _ = server.drop_database(&load_into);
                server.close();
                return Err(e);
            }
        };
        if in_place {
            // An interrupt waits for the swap: the live database refuses connections during it.
            let _swapping = crate::interrupt::swapping();
            drop(undo);
            if live_exists {
                if let Err(e) = server.swap(&db, &load_into, &kept) {
                    let _ = server.drop_database(&load_into);
                    server.close();
                    return Err(e.into());
                }
                job.report.kept_database = Some(kept);
            } else {
                server.swap_absent(&db, &load_into)?;
            }
        }
        server.close();
        job.report.bytes = bytes;
        job.report.tables = Some(counts);
        Ok(())
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let (asset, manifest, work) = (self.asset, job.manifest, job.work);
        let mut found = Found {
            bytes: job.fetch()?,
            ..Found::default()
        };
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
            .load(&db, DumpInput::Path(&input), self.spec.jobs.max(1), &[])
            .map_err(|e| e.to_string())?;
        job.loaded();
        let counts = server.counts(&db, &[]).map_err(|e| e.to_string())?;
        found.compared = Some(compare_counts("tables", &counts, &manifest.tables)?);
        found.checks = sql_checks(&asset.checks, |sql| {
            pg.psql(&db, sql)
                .map(|v| v.lines().next().map(str::to_owned))
                .map_err(|e| e.reason)
        });
        server.close();
        job.verified();
        Ok(found)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        _base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let mut out = LiveCheck::default();
        let source = source(&self.asset.name, self.spec)?;
        let db = source.conn.database();
        let server = PostgresTarget::connect(&self.asset.name, &source.conn, 0)?;
        if let Some(m) = manifest {
            let counts = server.counts(&db, &[])?;
            compare_live("tables", &counts, &m.tables, false, &mut out);
        }
        let psql = server.client.program("psql");
        let conn = source.conn.clone();
        server.close();
        out.checks = sql_checks(&self.asset.checks, |sql| first_value(&psql, &conn, sql));
        Ok(out)
    }

    fn lint_restore_step(&self, to: bool, tables: bool) -> Option<Lint> {
        Lint::some_tables_in_place(&self.asset.name, to, tables)
    }

    fn describe(&self) -> Description {
        Description {
            location: self.spec.url.to_string(),
            secrets: self.spec.password.iter().cloned().collect(),
            by_hand: format!(
                "apply DIR/{0}/data/globals.sql with psql if it is there, then pg_restore --create --dbname postgres DIR/{0}/data/<database>.dump (a directory dump: pg_restore --jobs 4 on DIR/{0}/data)",
                self.asset.name
            ),
        }
    }
}

/// The first column of the first row `sql` returns on `conn`, through one psql session: an
/// asset's check against a live database.
pub(super) fn first_value(psql: &Path, conn: &Conn, sql: &str) -> Result<Option<String>, String> {
    let mut s = lifeboat_sources::postgres::Session::open(psql, conn).map_err(|e| e.to_string())?;
    let rows = s.query(sql);
    s.close();
    rows.map(|r| r.into_iter().next().and_then(|r| r.into_iter().next()))
}

/// PostgreSQL's limit on a name, in bytes.
const MAX_NAME: usize = 63;

/// The asset's database with its password read. The error names what failed, not the asset.
fn conn_for(spec: &PostgresSpec) -> Result<Conn, String> {
    let password = spec
        .password
        .as_ref()
        .map(crate::secrets::read_secret)
        .transpose()
        .map_err(|reason| format!("read the password: {reason}"))?;
    Conn::parse(spec.url.expose(), password).map_err(|e| format!("{}: {e}", spec.url))
}

fn source(name: &str, spec: &PostgresSpec) -> Result<PostgresSource, SourceError> {
    Ok(PostgresSource {
        asset: name.to_owned(),
        conn: conn_for(spec).map_err(|reason| SourceError::Unsupported {
            asset: name.to_owned(),
            reason,
        })?,
        jobs: spec.jobs.max(1),
        globals: spec.globals,
    })
}

/// `name` cut to fit PostgreSQL's limit with `suffix` appended.
fn derived_name(name: &str, suffix: &str) -> String {
    let mut base = name.to_owned();
    while base.len() + suffix.len() > MAX_NAME {
        base.pop();
    }
    format!("{base}{suffix}")
}

/// Loads the dump into `db` and compares its rows per table with the manifest.
#[allow(clippy::too_many_arguments)]
fn load_and_check(
    repo: &Repo,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    server: &PostgresTarget,
    db: &str,
    dump_artifact: &str,
    directory: bool,
    jobs: u32,
    tables: &[String],
) -> Result<(u64, BTreeMap<String, u64>), EngineError> {
    let streamed = !directory && jobs == 1 && tables.is_empty();
    let bytes = if streamed {
        let mut feed = |w: &mut dyn std::io::Write| {
            repo.dump_artifact(snap, manifest, dump_artifact, w)
                .map_err(|e| e.to_string())
        };
        server.load(db, DumpInput::Stream(&mut feed), 1, &[])?
    } else {
        // pg_restore needs a file to run jobs in parallel or pick tables: write the dump
        // to the spool directory first, every artifact checked against its checksum.
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}-pgrestore-",
                lifeboat_core::SPOOL_PREFIX,
                std::process::id()
            ))
            .tempdir_in(lifeboat_core::spool_dir())
            .map_err(|e| EngineError::io("create", lifeboat_core::spool_dir(), e))?;
        let mut bytes = 0;
        let wanted: Vec<&str> = if directory {
            manifest
                .artifacts
                .iter()
                .map(|a| a.name.as_str())
                .filter(|n| *n != GLOBALS_ARTIFACT)
                .collect()
        } else {
            vec![dump_artifact]
        };
        for name in wanted {
            let path = dir.path().join(name);
            let mut file =
                fs::File::create(&path).map_err(|e| EngineError::io("create", &path, e))?;
            bytes += repo.dump_artifact(snap, manifest, name, &mut file)?;
        }
        let input: PathBuf = if directory {
            dir.path().to_path_buf()
        } else {
            dir.path().join(dump_artifact)
        };
        server.load(db, DumpInput::Path(&input), jobs, tables)?;
        bytes
    };
    let counts = server.counts(db, tables)?;
    let expected: BTreeMap<&String, &u64> = manifest
        .tables
        .iter()
        .filter(|(name, _)| {
            tables.is_empty()
                || tables
                    .iter()
                    .any(|t| lifeboat_sources::postgres::table_matches(t, name))
        })
        .collect();
    let mut wrong: Vec<String> = expected
        .iter()
        .filter(|(name, n)| counts.get(**name) != Some(**n))
        .map(|(name, n)| {
            format!(
                "{name}: {} rows, the manifest says {n}",
                counts
                    .get(*name)
                    .map_or_else(|| "no table".to_owned(), u64::to_string)
            )
        })
        .collect();
    if !wrong.is_empty() {
        let more = wrong.len().saturating_sub(5);
        wrong.truncate(5);
        if more > 0 {
            wrong.push(format!("and {more} more"));
        }
        return Err(EngineError::usage(
            format!(
                "restore asset {}: the restored database does not match the snapshot's manifest: {}",
                manifest.asset,
                wrong.join("; ")
            ),
            Some(
                "the restored copy was dropped and nothing was replaced; run `lifeboat verify --read-data`",
            ),
        ));
    }
    Ok((bytes, counts))
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
