//! The asset-kind contract (`lifeboat_engine`'s `kinds::Kind`), run the same way for every
//! kind against its real target: a backup, a restore that puts changed content back, a
//! sandbox load whose comparison with the manifest names the counts the fixture wrote, a
//! runbook check of the live target, and a restore over a damaged target. A new kind gets a fixture
//! here and one test line.
//!
//! Each fixture reads its target with that target's own tools (psql, the `mariadb` client,
//! redis-cli, SQLite, the filesystem), never through Lifeboat.

use std::{
    fs,
    path::{Path, PathBuf},
};

use lifeboat_testing::{
    DockerStandIn, StandInContainer,
    sandbox::{MariadbSandbox, PostgresSandbox, RedisSandbox},
};
use rusqlite::Connection;

use crate::{
    damaged::{garbage, overwrite_pages, redis_cli, shop_mariadb, shop_postgres},
    util::{Sandbox, listing, toml_path, toml_str},
};

/// The asset every fixture protects.
const ASSET: &str = "subject";

/// What a restore over the damaged target does for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDamage {
    /// The consistent read fails; the restore goes on and reports the target damaged.
    Damaged,
    /// The target is broken but readable: a regular safety snapshot is taken.
    Snapshot,
    /// The server is down: the restore replaces its data file and keeps the old one beside.
    KeptBeside,
    /// The target has no raw form: the restore refuses without `--skip-safety-snapshot`.
    Refused,
}

/// A live target of one kind with content the fixture knows.
trait Fixture {
    /// The lines of `[assets.subject]` after its `type`, and the type.
    fn asset(&self) -> (&'static str, String);
    /// The live content, read with the target's own tools.
    fn content(&mut self) -> String;
    /// Changes the live content.
    fn change(&mut self);
    /// Damages the live target; what a restore over it then does.
    fn damage(&mut self) -> OnDamage;
    /// What the sandbox load reports as compared with the manifest, from the fixture's data.
    fn compared(&self) -> String;
    /// What a check of the live target reports after a restore.
    fn live_compared(&self) -> String {
        self.compared()
    }
}

fn run_contract(fixture: &mut dyn Fixture) {
    let sb = Sandbox::new();
    let (kind, lines) = fixture.asset();
    sb.write_plan(&format!(
        "[assets.{ASSET}]\ntype = \"{kind}\"\n{lines}\n\n[[scenarios]]\nname = \"inspect\"\nsteps = [{{ check = \"{ASSET}\" }}]\n"
    ));
    sb.run_ok(&["init"]);
    let original = fixture.content();
    sb.run_ok(&["backup"]);

    // Round trip: changed content comes back whole.
    fixture.change();
    assert_ne!(fixture.content(), original, "{kind}: the change is real");
    let dry = sb.run_ok(&["--json", "restore", ASSET, "--dry-run"]).json();
    let planned = dry["actions"].as_array().expect("planned actions");
    assert!(
        planned.iter().any(|a| a["action"] == "safety-snapshot"),
        "{kind}: the plan names the safety copy: {dry:#}"
    );
    assert_ne!(
        fixture.content(),
        original,
        "{kind}: a dry run changes nothing"
    );
    let report = sb.run_ok(&["--json", "restore", ASSET, "--yes"]).json();
    assert_eq!(fixture.content(), original, "{kind}: restored");
    assert!(
        report["safety_snapshot"].is_string(),
        "{kind}: a safety snapshot of the changed target: {report:#}"
    );
    assert!(report["damaged"].is_null(), "{kind}: {report:#}");

    // Sandbox load and comparison with the manifest.
    let loads = sb.run_ok(&["--json", "verify", "--restore", ASSET]).json();
    let load = &loads[0];
    assert_eq!(load["ok"], true, "{kind}: {load:#}");
    assert_eq!(load["compared"], fixture.compared(), "{kind}: {load:#}");

    // The live target, checked by a runbook against the newest snapshot.
    let recover = sb.run_ok(&["--json", "recover", "inspect", "--yes"]).json();
    let step = &recover["report"]["steps"][0];
    assert_eq!(step["status"], "done", "{kind}: {recover:#}");
    let detail = step["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!("{} in snapshot ", fixture.live_compared())),
        "{kind}: {detail}"
    );

    // A restore over a damaged target.
    match fixture.damage() {
        OnDamage::Damaged => {
            let run = sb
                .run(&["--json", "restore", ASSET, "--yes"])
                .expect_code(0);
            let report = run.json();
            assert!(
                report["damaged"]["reason"].is_string(),
                "{kind}: the report says the target was damaged: {report:#}"
            );
            assert!(
                run.stderr.contains("the live target is damaged"),
                "{kind}: {}",
                run.stderr
            );
        }
        OnDamage::Snapshot => {
            let report = sb.run_ok(&["--json", "restore", ASSET, "--yes"]).json();
            assert!(report["safety_snapshot"].is_string(), "{kind}: {report:#}");
            assert!(report["damaged"].is_null(), "{kind}: {report:#}");
        }
        OnDamage::KeptBeside => {
            let report = sb.run_ok(&["--json", "restore", ASSET, "--yes"]).json();
            let kept = report["kept"].as_str().expect("the old file kept beside");
            assert_eq!(fs::read(kept).unwrap(), garbage(4096), "{kind}: {report:#}");
        }
        OnDamage::Refused => {
            let run = sb.run(&["restore", ASSET, "--yes"]).expect_code(1);
            assert!(
                run.stderr.contains("--skip-safety-snapshot"),
                "{kind}: the refusal says how to go on: {}",
                run.stderr
            );
            sb.run_ok(&["restore", ASSET, "--yes", "--skip-safety-snapshot"]);
        }
    }
    assert_eq!(
        fixture.content(),
        original,
        "{kind}: restored over the damage"
    );
}

#[test]
fn sqlite_keeps_the_kind_contract() {
    run_contract(&mut SqliteFixture::new());
}

#[test]
fn postgres_keeps_the_kind_contract() {
    run_contract(&mut PostgresFixture::new());
}

#[test]
fn postgres_cluster_keeps_the_kind_contract() {
    run_contract(&mut ClusterFixture::new());
}

#[test]
fn mysql_keeps_the_kind_contract() {
    run_contract(&mut MysqlFixture::new());
}

#[test]
fn redis_keeps_the_kind_contract() {
    run_contract(&mut RedisFixture::new());
}

#[test]
fn files_keep_the_kind_contract() {
    run_contract(&mut FilesFixture::new());
}

#[test]
fn docker_volume_keeps_the_kind_contract() {
    run_contract(&mut DockerVolumeFixture::new());
}

#[test]
fn command_keeps_the_kind_contract() {
    run_contract(&mut CommandFixture::new());
}

struct SqliteFixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl SqliteFixture {
    const ROWS: u32 = 300;

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let c = Connection::open(&db).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE tools(id INTEGER PRIMARY KEY, name TEXT)")
            .unwrap();
        for i in 0..Self::ROWS {
            c.execute(
                "INSERT INTO tools(name) VALUES (?1)",
                [format!("tool {i} {}", "x".repeat(200))],
            )
            .unwrap();
        }
        Self { _dir: dir, db }
    }
}

impl Fixture for SqliteFixture {
    fn asset(&self) -> (&'static str, String) {
        ("sqlite", format!("path = {}", toml_path(&self.db)))
    }

    fn content(&mut self) -> String {
        Connection::open(&self.db)
            .unwrap()
            .query_row("SELECT count(*) || ':' || sum(id) FROM tools", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    fn change(&mut self) {
        Connection::open(&self.db)
            .unwrap()
            .execute("DELETE FROM tools WHERE id % 3 = 0", [])
            .unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        overwrite_pages(&self.db);
        OnDamage::Damaged
    }

    fn compared(&self) -> String {
        format!("1 tables, {} as recorded", Self::ROWS)
    }
}

struct PostgresFixture {
    pg: PostgresSandbox,
}

impl PostgresFixture {
    fn new() -> Self {
        Self {
            pg: shop_postgres(),
        }
    }
}

impl Fixture for PostgresFixture {
    fn asset(&self) -> (&'static str, String) {
        ("postgres", format!("url = \"{}\"", self.pg.url("shop")))
    }

    fn content(&mut self) -> String {
        shop_content(&self.pg)
    }

    fn change(&mut self) {
        self.pg
            .psql("shop", "DELETE FROM orders WHERE id > 1000")
            .unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        // A table whose file is gone: pg_dump fails on it.
        let data_dir = self.pg.psql("postgres", "SHOW data_directory").unwrap();
        let rel = self
            .pg
            .psql("shop", "SELECT pg_relation_filepath('orders')")
            .unwrap();
        fs::remove_file(Path::new(&data_dir).join(rel)).unwrap();
        assert!(self.pg.psql("shop", "SELECT count(*) FROM orders").is_err());
        OnDamage::Damaged
    }

    fn compared(&self) -> String {
        "2 tables, 1540 as recorded".to_owned()
    }
}

/// The whole cluster of [`shop_postgres`], restored in place by stopping it, swapping its
/// data directory and starting it with `pg_ctl`.
struct ClusterFixture {
    pg: PostgresSandbox,
    system: String,
}

impl ClusterFixture {
    fn new() -> Self {
        let pg = shop_postgres();
        // What `pg_ctl start` reads when a restore starts the cluster again: its own port and
        // socket, never the machine's 5432.
        let dir = pg.dir().display().to_string();
        for setting in [
            format!("port = {}", pg.port()),
            format!("unix_socket_directories = '{dir}'"),
            "listen_addresses = '127.0.0.1'".to_owned(),
        ] {
            pg.psql("postgres", &format!("ALTER SYSTEM SET {setting}"))
                .unwrap();
        }
        let system = pg
            .psql(
                "postgres",
                "SELECT system_identifier FROM pg_control_system()",
            )
            .unwrap();
        Self { pg, system }
    }
}

impl Fixture for ClusterFixture {
    fn asset(&self) -> (&'static str, String) {
        (
            "postgres-cluster",
            format!(
                "url = \"{}\"\ndata-dir = {}",
                self.pg.url("postgres"),
                toml_path(&self.pg.dir().join("data"))
            ),
        )
    }

    fn content(&mut self) -> String {
        shop_content(&self.pg)
    }

    fn change(&mut self) {
        self.pg
            .psql("shop", "DELETE FROM orders WHERE id > 1000")
            .unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        // A crash: the server killed with its backends, its postmaster.pid left behind, and
        // its control file overwritten, so that it cannot start again and nothing reads it.
        let data = self.pg.dir().join("data");
        crate::util::crash_postgres(&data);
        fs::write(data.join("global/pg_control"), garbage(8192)).unwrap();
        assert!(
            data.join("postmaster.pid").exists(),
            "the crash leaves its pid file"
        );
        assert!(self.pg.psql("shop", "SELECT 1").is_err());
        OnDamage::Damaged
    }

    fn compared(&self) -> String {
        format!(
            "system {} as recorded, 0 archived WAL file(s) replayed",
            self.system
        )
    }

    fn live_compared(&self) -> String {
        format!(
            "system {} as recorded, WAL archiving into Lifeboat off",
            self.system
        )
    }
}

impl Drop for ClusterFixture {
    /// The server a restore started is not the sandbox's own: stop it before the directory
    /// goes.
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(self.pg.bin_dir().join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.pg.dir().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some((uid, gid)) = crate::pitr::postgres_user() {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let _ = cmd.status();
    }
}

/// The orders' count and id sum, and the customers' count, of [`shop_postgres`]'s database.
fn shop_content(pg: &PostgresSandbox) -> String {
    pg.psql(
        "shop",
        "SELECT (SELECT count(*) || ':' || sum(id) FROM orders) || '/' || (SELECT count(*) FROM customers)",
    )
    .unwrap()
}

struct MysqlFixture {
    maria: MariadbSandbox,
}

impl MysqlFixture {
    fn new() -> Self {
        Self {
            maria: shop_mariadb(),
        }
    }
}

impl Fixture for MysqlFixture {
    fn asset(&self) -> (&'static str, String) {
        ("mysql", format!("url = \"{}\"", self.maria.url("shop")))
    }

    fn content(&mut self) -> String {
        self.maria
            .sql(
                "shop",
                "SELECT CONCAT((SELECT count(*) FROM customers), ':', (SELECT sum(id) FROM customers), '/', (SELECT count(*) FROM legacy))",
            )
            .unwrap()
    }

    fn change(&mut self) {
        self.maria
            .sql("shop", "DELETE FROM customers WHERE id > 200")
            .unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        // A MyISAM index overwritten: the dump fails on the crashed table.
        let data_dir = self.maria.sql("", "SELECT @@datadir").unwrap();
        self.maria.sql("", "FLUSH TABLES").unwrap();
        let index = Path::new(&data_dir).join("shop/legacy.MYI");
        let len = fs::metadata(&index).unwrap().len() as usize;
        fs::write(&index, garbage(len)).unwrap();
        self.maria.sql("", "FLUSH TABLES").unwrap();
        assert!(
            self.maria
                .sql("shop", "SELECT count(*) FROM legacy")
                .is_err()
        );
        OnDamage::Damaged
    }

    fn compared(&self) -> String {
        "2 tables, 420 as recorded".to_owned()
    }
}

/// A Redis server Lifeboat restores into through its data directory once it is down.
struct RedisFixture {
    live: Option<RedisSandbox>,
    /// The data directory, copied out of the sandbox's when the server is brought down.
    data_dir: tempfile::TempDir,
}

impl RedisFixture {
    const KEYS: u32 = 250;

    fn new() -> Self {
        let live = RedisSandbox::start(None).unwrap();
        for i in 0..Self::KEYS {
            redis_cli(live.port(), &["SET", &format!("k:{i}"), &format!("v{i}")]);
        }
        Self {
            live: Some(live),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn port(&self) -> u16 {
        self.live.as_ref().expect("the server runs").port()
    }
}

impl Fixture for RedisFixture {
    fn asset(&self) -> (&'static str, String) {
        (
            "redis",
            format!(
                "url = \"redis://127.0.0.1:{}\"\ndata-dir = {}",
                self.port(),
                toml_path(self.data_dir.path())
            ),
        )
    }

    fn content(&mut self) -> String {
        if self.live.is_none() {
            // Brought up again from the RDB file the restore wrote into the data directory.
            let rdb = self.data_dir.path().join("dump.rdb");
            self.live = Some(RedisSandbox::start(Some(&rdb)).unwrap());
        }
        let port = self.port();
        format!(
            "{}/{}",
            redis_cli(port, &["DBSIZE"]),
            redis_cli(port, &["GET", &format!("k:{}", Self::KEYS - 1)])
        )
    }

    fn change(&mut self) {
        redis_cli(self.port(), &["FLUSHALL"]);
    }

    fn damage(&mut self) -> OnDamage {
        // The server is down, its RDB file unreadable: a restore writes a new one, which the
        // server loads when it starts, and keeps the old one beside.
        self.live = None;
        fs::write(self.data_dir.path().join("dump.rdb"), garbage(4096)).unwrap();
        OnDamage::KeptBeside
    }

    fn compared(&self) -> String {
        format!("1 databases, {} as recorded", Self::KEYS)
    }

    fn live_compared(&self) -> String {
        format!("1 databases, at least the {} recorded", Self::KEYS)
    }
}

struct FilesFixture {
    dir: tempfile::TempDir,
}

impl FilesFixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("uploads");
        fs::create_dir_all(root.join("2026/12")).unwrap();
        for i in 0..20u32 {
            fs::write(
                root.join(format!("2026/12/file-{i}.txt")),
                format!("upload {i}\n").repeat(i as usize + 1),
            )
            .unwrap();
        }
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("uploads")
    }

    fn bytes(&self) -> u64 {
        (0..20u64)
            .map(|i| (format!("upload {i}\n").len() as u64) * (i + 1))
            .sum()
    }
}

impl Fixture for FilesFixture {
    fn asset(&self) -> (&'static str, String) {
        ("files", format!("paths = [{}]", toml_path(&self.root())))
    }

    fn content(&mut self) -> String {
        let mut text = format!("{:?}", listing(&self.root()));
        text.push_str(
            &fs::read_to_string(self.root().join("2026/12/file-7.txt")).unwrap_or_default(),
        );
        text
    }

    fn change(&mut self) {
        fs::remove_file(self.root().join("2026/12/file-3.txt")).unwrap();
        fs::write(self.root().join("2026/12/new.txt"), "added later").unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        // Files overwritten with garbage and a directory gone: still readable as they are.
        fs::write(self.root().join("2026/12/file-7.txt"), garbage(333)).unwrap();
        fs::remove_dir_all(self.root().join("2026")).unwrap();
        fs::write(self.root().join("2026"), garbage(10)).unwrap();
        OnDamage::Snapshot
    }

    fn compared(&self) -> String {
        format!("20 files, {} bytes as recorded", self.bytes())
    }
}

/// A Docker volume holding the files fixture's tree, served by the Engine API stand-in (no
/// Docker daemon runs here) with a container that mounts it, stopped for each backup and
/// restore.
struct DockerVolumeFixture {
    files: FilesFixture,
    docker: DockerStandIn,
}

impl DockerVolumeFixture {
    fn new() -> Self {
        let files = FilesFixture::new();
        let docker = DockerStandIn::start(
            files.dir.path(),
            &[("uploads", &files.root())],
            &[StandInContainer {
                name: "web",
                volumes: vec!["uploads"],
                writes: None,
                running: true,
            }],
        );
        Self { files, docker }
    }
}

impl Fixture for DockerVolumeFixture {
    fn asset(&self) -> (&'static str, String) {
        (
            "docker-volume",
            format!(
                "volume = \"uploads\"\nstop = [\"web\"]\ndocker-host = {}",
                toml_str(&self.docker.host())
            ),
        )
    }

    fn content(&mut self) -> String {
        self.files.content()
    }

    fn change(&mut self) {
        self.files.change();
    }

    fn damage(&mut self) -> OnDamage {
        self.files.damage()
    }

    fn compared(&self) -> String {
        self.files.compared()
    }
}

/// A service whose export is one file: the backup command prints it, the restore command
/// writes it.
struct CommandFixture {
    dir: tempfile::TempDir,
}

impl CommandFixture {
    const TEXT: &str = "service state v1\n";

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("state.txt"), Self::TEXT.repeat(100)).unwrap();
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.txt")
    }
}

impl Fixture for CommandFixture {
    fn asset(&self) -> (&'static str, String) {
        (
            "command",
            format!(
                "backup = {}\nrestore = {}\nfilename = \"state.txt\"",
                toml_str(&format!("cat {}", self.state().display())),
                toml_str(&format!("cat > {}", self.state().display())),
            ),
        )
    }

    fn content(&mut self) -> String {
        fs::read_to_string(self.state()).unwrap_or_default()
    }

    fn change(&mut self) {
        fs::write(self.state(), "service state v2\n").unwrap();
    }

    fn damage(&mut self) -> OnDamage {
        // The service cannot export: the backup command fails.
        fs::remove_file(self.state()).unwrap();
        OnDamage::Refused
    }

    fn compared(&self) -> String {
        "1 artifact(s), SHA-256 as recorded".to_owned()
    }

    fn live_compared(&self) -> String {
        format!("the backup command gave {} bytes", Self::TEXT.len() * 100)
    }
}
