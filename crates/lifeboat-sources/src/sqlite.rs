//! `sqlite` assets: a consistent copy through SQLite's online backup API, checked before it is
//! stored and again before it replaces the target.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use lifeboat_core::{ArtifactData, Payload, SourceFacts, StreamArtifact};
use rusqlite::{Connection, OpenFlags, backup::StepResult};

use crate::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct SqliteSource {
    pub asset: String,
    /// The database file.
    pub path: PathBuf,
}

/// What a check of a database file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFacts {
    /// `PRAGMA integrity_check`'s answer: `ok` when the file is sound.
    pub integrity: String,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    pub version: String,
}

impl SqliteSource {
    fn err(&self, reason: impl std::fmt::Display) -> SourceError {
        SourceError::Path {
            asset: self.asset.clone(),
            path: self.path.clone(),
            reason: reason.to_string(),
            hint: None,
        }
    }

    fn artifact_name(&self) -> String {
        self.path.file_name().map_or_else(
            || "database.sqlite".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Copies the live database into `dest` in one step of the backup API: the copy is the
    /// database as of one read transaction, whatever other connections write meanwhile (in WAL
    /// mode they are not even blocked).
    fn copy_to(&self, dest: &Path) -> Result<(), SourceError> {
        let src = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.err(format!("open: {e}")))?;
        src.busy_timeout(Duration::from_secs(30))
            .map_err(|e| self.err(e))?;
        let mut dst = Connection::open(dest).map_err(|e| self.err(format!("create copy: {e}")))?;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)
            .map_err(|e| self.err(format!("start copy: {e}")))?;
        loop {
            match backup
                .step(-1)
                .map_err(|e| self.err(format!("copy: {e}")))?
            {
                StepResult::Done => break,
                // Busy or locked by a writer: wait and take the whole copy again.
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        Ok(())
    }
}

/// Checks a database file nobody writes to (a copy Lifeboat made, a restored file before it
/// goes into place): integrity, rows per table, SQLite version. The file is opened immutable,
/// so no `-wal`/`-shm` files appear beside it.
///
/// # Errors
/// When the file cannot be opened or read as a database.
pub fn inspect(path: &Path) -> rusqlite::Result<SqliteFacts> {
    let uri = format!(
        "file:{}?immutable=1",
        path.display()
            .to_string()
            .replace('%', "%25")
            .replace('?', "%3f")
            .replace('#', "%23")
    );
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )?;
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let mut tables = BTreeMap::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| r.get(0))?;
        tables.insert(name, u64::try_from(n).unwrap_or(0));
    }
    let version: String = conn.query_row("SELECT sqlite_version()", [], |r| r.get(0))?;
    Ok(SqliteFacts {
        integrity: integrity.join("; "),
        tables,
        version,
    })
}

/// The first column of the first row `sql` returns from a database nobody writes to, as text
/// (`None` without rows): for the plan's checks against a restored copy.
///
/// # Errors
/// When the file cannot be opened or the query fails.
pub fn query_first(path: &Path, sql: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(match row.get_ref(0)? {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("{} bytes", b.len()),
    }))
}

impl Source for SqliteSource {
    fn preflight(&self) -> Result<(), SourceError> {
        let meta = fs::metadata(&self.path).map_err(|e| SourceError::Path {
            asset: self.asset.clone(),
            path: self.path.clone(),
            reason: e.to_string(),
            hint: Some(format!(
                "fix assets.{}.path in the plan, or create the database",
                self.asset
            )),
        })?;
        if !meta.is_file() {
            return Err(self.err("not a database file"));
        }
        Ok(())
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let copy = tempfile::Builder::new()
            .prefix(".lifeboat-sqlite-")
            .tempfile()
            .map_err(|e| self.err(format!("create copy: {e}")))?
            .into_temp_path();
        self.copy_to(&copy)?;
        let facts = inspect(&copy).map_err(|e| self.err(format!("check the copy: {e}")))?;
        if facts.integrity != "ok" {
            return Err(self.err(format!(
                "integrity check of the copy failed: {}",
                facts.integrity
            )));
        }
        let artifact = StreamArtifact {
            name: self.artifact_name(),
            data: ArtifactData::File(copy),
        };
        let facts = SourceFacts {
            server_version: Some(format!("SQLite {}", facts.version)),
            tables: facts.tables,
            integrity: Some(facts.integrity),
            ..SourceFacts::default()
        };
        Ok((Payload::Streams(vec![artifact]), facts))
    }

    fn identity(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

/// What a restore of a database file did.
#[derive(Debug, Clone)]
pub struct SqliteRestore {
    pub bytes: u64,
    pub tables: BTreeMap<String, u64>,
    /// The previous database, kept beside the target.
    pub kept: Option<PathBuf>,
}

impl SqliteSource {
    /// Restores a database to `target` (the asset's path, or another): `feed` writes the
    /// artifact into a temporary file beside `target`, which must pass `PRAGMA integrity_check`
    /// and hold `expected` rows per table; then the current database, if any, is copied aside
    /// consistently (`<target>.lifeboat-old-<unix time>`; byte for byte when it is too damaged
    /// to be read), its `-wal`/`-shm` files are moved aside with it, and the new file is
    /// renamed over the target. On any failure before that
    /// rename the target is untouched.
    ///
    /// # Errors
    /// A failed feed, check or rename, naming the asset and file.
    pub fn restore<E: std::fmt::Display>(
        &self,
        target: &Path,
        expected: &BTreeMap<String, u64>,
        feed: impl FnOnce(&mut dyn Write) -> Result<u64, E>,
    ) -> Result<SqliteRestore, SourceError> {
        let fail = |reason: String| SourceError::Path {
            asset: self.asset.clone(),
            path: target.to_path_buf(),
            reason,
            hint: None,
        };
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
        let temp = tempfile::Builder::new()
            .prefix(".lifeboat-restore-")
            .tempfile_in(dir)
            .map_err(|e| fail(format!("create temporary file: {e}")))?;
        let (mut file, temp_path) = temp.into_parts();
        let bytes = feed(&mut file).map_err(|e| fail(e.to_string()))?;
        file.sync_all()
            .map_err(|e| fail(format!("write temporary file: {e}")))?;
        drop(file);
        let facts =
            inspect(&temp_path).map_err(|e| fail(format!("check restored database: {e}")))?;
        if facts.integrity != "ok" {
            return Err(fail(format!(
                "restored database fails its integrity check: {}",
                facts.integrity
            )));
        }
        if !expected.is_empty() && &facts.tables != expected {
            return Err(fail(format!(
                "restored database does not match its manifest (rows per table {:?}, manifest {:?})",
                facts.tables, expected
            )));
        }
        let kept = if target.exists() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut name = target.as_os_str().to_owned();
            name.push(format!(".lifeboat-old-{stamp}"));
            let old = PathBuf::from(name);
            let live = SqliteSource {
                asset: self.asset.clone(),
                path: target.to_path_buf(),
            };
            // A consistent copy when the database can be read; its -wal/-shm are then stale.
            // A damaged one is kept byte for byte, its -wal/-shm beside under the same name so
            // that the three open together as they were.
            let stale = match live.copy_to(&old) {
                Ok(()) => "-stale",
                Err(e) => {
                    let _ = fs::remove_file(&old);
                    fs::copy(target, &old).map_err(|io| {
                        fail(format!(
                            "keep the damaged database ({e}) as {}: {io}",
                            old.display()
                        ))
                    })?;
                    ""
                }
            };
            for suffix in ["-wal", "-shm"] {
                let mut side = target.as_os_str().to_owned();
                side.push(suffix);
                let side = PathBuf::from(side);
                if side.exists() {
                    let mut aside = old.as_os_str().to_owned();
                    aside.push(format!("{suffix}{stale}"));
                    fs::rename(&side, PathBuf::from(aside))
                        .map_err(|e| fail(format!("move {} aside: {e}", side.display())))?;
                }
            }
            Some(old)
        } else {
            None
        };
        temp_path
            .persist(target)
            .map_err(|e| fail(format!("move the restored database into place: {e}")))?;
        Ok(SqliteRestore {
            bytes,
            tables: facts.tables,
            kept,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;

    fn wal_db(path: &Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, note TEXT);
             CREATE TABLE order_lines(id INTEGER PRIMARY KEY, order_id INTEGER);",
        )
        .unwrap();
        c
    }

    /// Under concurrent writes, every copy is one consistent state: each transaction adds one
    /// order and one line, so the counts in the copy are always equal.
    #[test]
    fn copy_of_a_wal_database_under_writes_is_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shop.db");
        drop(wal_db(&db));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let db = db.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut c = Connection::open(&db).unwrap();
                c.busy_timeout(Duration::from_secs(10)).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let tx = c.transaction().unwrap();
                    tx.execute("INSERT INTO orders(note) VALUES ('x')", [])
                        .unwrap();
                    tx.execute(
                        "INSERT INTO order_lines(order_id) VALUES (last_insert_rowid())",
                        [],
                    )
                    .unwrap();
                    tx.commit().unwrap();
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let src = SqliteSource {
            asset: "shop".into(),
            path: db.clone(),
        };
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (_, facts) = src.backup().unwrap();
            assert_eq!(facts.integrity.as_deref(), Some("ok"));
            assert_eq!(
                facts.tables["orders"], facts.tables["order_lines"],
                "{:?}",
                facts.tables
            );
            seen.push(facts.tables["orders"]);
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(
            written > 0 && seen.iter().all(|n| *n <= written),
            "{seen:?} of {written}"
        );
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    /// The bytes of one backup's database copy, and what the backup found.
    fn backed_up(src: &SqliteSource) -> (Vec<u8>, SourceFacts) {
        let (Payload::Streams(mut streams), facts) = src.backup().unwrap() else {
            panic!("one stream");
        };
        let ArtifactData::File(copy) = streams.remove(0).data else {
            panic!("a database copy is a file");
        };
        (fs::read(&copy).unwrap(), facts)
    }

    #[test]
    fn restore_checks_before_replacing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = wal_db(&db);
        c.execute("INSERT INTO orders(note) VALUES ('kept')", [])
            .unwrap();
        let src = SqliteSource {
            asset: "app".into(),
            path: db.clone(),
        };
        let (bytes, facts) = backed_up(&src);
        c.execute("DELETE FROM orders", []).unwrap();
        drop(c);

        // A damaged artifact is refused and the target stays as it is.
        let err = src
            .restore(&db, &facts.tables, |w| {
                w.write_all(b"not a database").map(|()| 14u64)
            })
            .unwrap_err();
        assert!(err.to_string().contains("app.db"), "{err}");
        assert_eq!(inspect(&db).unwrap().tables["orders"], 0);

        let done = src
            .restore(&db, &facts.tables, |w| {
                w.write_all(&bytes).map(|()| bytes.len() as u64)
            })
            .unwrap();
        assert_eq!(inspect(&db).unwrap().tables["orders"], 1);
        let kept = done.kept.expect("old database kept");
        assert_eq!(inspect(&kept).unwrap().tables["orders"], 0);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".lifeboat-restore-")
            })
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    /// A target that is not a database any more is replaced all the same, and its bytes (and
    /// its `-wal`) are kept beside exactly as they were.
    #[test]
    fn restore_over_a_damaged_database_keeps_its_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = wal_db(&db);
        c.execute("INSERT INTO orders(note) VALUES ('good')", [])
            .unwrap();
        drop(c);
        let src = SqliteSource {
            asset: "app".into(),
            path: db.clone(),
        };
        let (good, facts) = backed_up(&src);

        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&db, &garbage).unwrap();
        let wal = dir.path().join("app.db-wal");
        fs::write(&wal, b"wal bytes").unwrap();
        assert!(src.backup().is_err(), "the damaged file cannot be copied");

        let done = src
            .restore(&db, &facts.tables, |w| {
                w.write_all(&good).map(|()| good.len() as u64)
            })
            .unwrap();
        assert_eq!(inspect(&db).unwrap().tables["orders"], 1);
        let kept = done.kept.expect("the damaged file is kept");
        assert_eq!(fs::read(&kept).unwrap(), garbage);
        let mut kept_wal = kept.into_os_string();
        kept_wal.push("-wal");
        assert_eq!(fs::read(PathBuf::from(kept_wal)).unwrap(), b"wal bytes");
        assert!(
            !wal.exists(),
            "the old -wal must not be applied to the new file"
        );
    }
}
