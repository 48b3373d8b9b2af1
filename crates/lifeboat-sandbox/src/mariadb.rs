use std::{
    fs,
    io::{Read, Write},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    SandboxError, fail, free_port,
    guard::{Guard, Server},
    temp_dir,
};

const WHAT: &str = "MariaDB";

/// A scratch MariaDB: `mariadb-install-db` and `mariadbd --no-defaults` in a temporary
/// directory, listening on 127.0.0.1 at a free port, its socket in that directory. No option
/// file of the machine is read (`/etc/mysql`, `~/.my.cnf`), so the machine's own server and
/// its data are never touched. User `root` logs in over TCP, with the password given or none.
#[derive(Debug)]
pub struct MariadbSandbox {
    guard: Guard,
    port: u16,
    client: PathBuf,
}

/// The first of `names` found in `dirs` or on `PATH`.
fn program(names: &[&str], dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all: Vec<PathBuf> = std::env::split_paths(&path).collect();
    all.extend(dirs.iter().map(PathBuf::from));
    names
        .iter()
        .find_map(|n| all.iter().map(|d| d.join(n)).find(|p| p.is_file()))
}

impl MariadbSandbox {
    /// Starts a server; `root_password`, when given, is then required of `root` (over TCP and
    /// the socket alike).
    ///
    /// # Errors
    /// No server binaries, or `mariadb-install-db`/`mariadbd` failing (their output is in the
    /// message).
    pub fn start(root_password: Option<&str>) -> Result<Self, SandboxError> {
        let install =
            program(&["mariadb-install-db", "mysql_install_db"], &[]).ok_or_else(|| {
                fail(
                    WHAT,
                    "mariadb-install-db is not installed (hint: apt-get install mariadb-server)",
                )
            })?;
        let server =
            program(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/libexec"]).ok_or_else(|| {
                fail(
                    WHAT,
                    "mariadbd is not installed (hint: apt-get install mariadb-server)",
                )
            })?;
        let client = program(&["mariadb", "mysql"], &[]).ok_or_else(|| {
            fail(
                WHAT,
                "the mariadb client is not installed (hint: apt-get install mariadb-client)",
            )
        })?;
        let dir = temp_dir(".lifeboat-sandbox-mariadb-").map_err(|e| fail(WHAT, e.to_string()))?;
        // From here on, the directory goes whenever the sandbox does not start.
        let mut guard = Guard::new(dir.clone());
        let user = super::server_user("mysql");
        Self::prepare(&dir, &install, user)?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| fail(WHAT, e.to_string()))?;
            let mut cmd = Command::new(&server);
            // --no-defaults first: no option file of the machine may point it elsewhere.
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", dir.join("data").display()))
                .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
                .arg(format!("--log-error={}", dir.join("server.log").display()))
                .arg(format!("--tmpdir={}", dir.display()))
                .arg(format!("--port={port}"))
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_general_ci",
                    "--max-allowed-packet=1073741824",
                    "--innodb-buffer-pool-size=32M",
                    "--innodb-log-file-size=16M",
                    "--innodb-flush-log-at-trx-commit=0",
                    "--innodb-doublewrite=0",
                    "--event-scheduler=OFF",
                ])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => return Err(fail(WHAT, format!("run {}: {e}", server.display()))),
            };
            guard.running(Server::Child(child));
            let ready = match guard.child() {
                Some(child) => wait_ready(child, &dir, &client),
                None => Err("the server is gone".to_owned()),
            };
            match ready {
                Ok(()) => {
                    let sandbox = Self {
                        guard,
                        port,
                        client,
                    };
                    if let Some(pw) = root_password {
                        sandbox.set_root_password(pw)?;
                    }
                    return Ok(sandbox);
                }
                Err(reason) => {
                    guard.stop();
                    let taken = reason.contains("Address already in use");
                    last = reason;
                    if !taken {
                        break;
                    }
                    // Another process took the port: the data directory is reused.
                    let _ = fs::remove_file(dir.join("server.log"));
                }
            }
        }
        Err(fail(WHAT, last))
    }

    /// Creates the data directory, owned by the server's user.
    fn prepare(dir: &Path, install: &Path, user: Option<(u32, u32)>) -> Result<(), SandboxError> {
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(|e| fail(WHAT, e.to_string()))?;
        }
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            // The bootstrap's temporary tables too: concurrent installs collide in /tmp.
            .arg(format!("--tmpdir={}", dir.display()))
            .args([
                // root logs in with a password (or none), not through the system account.
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .current_dir(dir)
            .stdin(Stdio::null());
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .output()
            .map_err(|e| fail(WHAT, format!("run {}: {e}", install.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(
                WHAT,
                format!(
                    "{} exited with {}: {} {}",
                    install.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ))
        }
    }

    fn set_root_password(&self, password: &str) -> Result<(), SandboxError> {
        let pw = lifeboat_sources::mysql::sql_str(password);
        let mut sql = String::new();
        for host in ["localhost", "127.0.0.1", "::1"] {
            sql.push_str(&format!(
                "ALTER USER IF EXISTS 'root'@'{host}' IDENTIFIED BY {pw};\n"
            ));
        }
        self.sql("", &sql)?;
        // Later calls log in with it, from the sandbox's own option file.
        let conf = self.guard.dir().join("client.cnf");
        let mut escaped = String::new();
        for c in password.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '"' => escaped.push_str("\\\""),
                c => escaped.push(c),
            }
        }
        fs::write(&conf, format!("[client]\npassword=\"{escaped}\"\n"))
            .and_then(|()| fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)))
            .map_err(|e| fail(WHAT, format!("write {}: {e}", conf.display())))
    }

    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:<port>/<db>`.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL as root over the sandbox's socket (`db` empty for none) and returns the
    /// output, tab-separated, without column names. The SQL goes through stdin.
    ///
    /// # Errors
    /// When the client fails; its stderr is in the message.
    pub fn sql(&self, db: &str, sql: &str) -> Result<String, SandboxError> {
        run_sql(&self.client, self.guard.dir(), db, sql)
    }
}

/// Waits until the server answers on its socket; the reason it did not otherwise.
fn wait_ready(child: &mut Child, dir: &Path, client: &Path) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            return Err(format!(
                "mariadbd exited with {status}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        if dir.join("mysqld.sock").exists() && run_sql(client, dir, "", "SELECT 1").is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("mariadbd did not answer within 60 s".into())
}

/// The `mariadb` client as root on the sandbox's socket, reading only the sandbox's own
/// option file (the root password, once set), with `sql` on stdin.
fn run_sql(client: &Path, dir: &Path, db: &str, sql: &str) -> Result<String, SandboxError> {
    let conf = dir.join("client.cnf");
    let mut cmd = Command::new(client);
    if conf.exists() {
        cmd.arg(format!("--defaults-file={}", conf.display()));
    } else {
        cmd.arg("--no-defaults");
    }
    cmd.arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .args([
            "--user=root",
            "--protocol=SOCKET",
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
        ]);
    if !db.is_empty() {
        cmd.arg(format!("--database={db}"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(WHAT, format!("run {}: {e}", client.display())))?;
    let mut stdin = child.stdin.take();
    let input = sql.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let mut err_pipe = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut err = String::new();
        if let Some(s) = err_pipe.as_mut() {
            let _ = s.read_to_string(&mut err);
        }
        err
    });
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let _ = writer.join();
    let err = errors.join().unwrap_or_default();
    let status = child
        .wait()
        .map_err(|e| fail(WHAT, format!("wait for the client: {e}")))?;
    if status.success() {
        Ok(out.trim_end_matches('\n').to_owned())
    } else {
        Err(fail(WHAT, format!("mariadb: {}", err.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port_closed;

    #[test]
    fn mariadb_sandbox_runs_apart_and_cleans_up() {
        let db = MariadbSandbox::start(Some("sandbox-pw")).expect("MariaDB is installed");
        assert_ne!(db.port(), 3306, "never the machine's own server");
        assert_eq!(db.sql("", "SELECT 40 + 2").unwrap(), "42");
        assert_eq!(db.sql("", "SELECT @@port").unwrap(), db.port().to_string());
        assert_eq!(
            db.sql("", "SELECT @@datadir").unwrap(),
            format!("{}/", db.guard.dir().join("data").display())
        );
        db.sql("", "CREATE DATABASE scratch").unwrap();
        db.sql(
            "scratch",
            "CREATE TABLE t (v VARCHAR(10)); INSERT INTO t VALUES ('ok')",
        )
        .unwrap();
        assert_eq!(db.sql("scratch", "SELECT v FROM t").unwrap(), "ok");
        // root over TCP needs the password.
        let tcp = Command::new(&db.client)
            .args([
                "--no-defaults",
                "--protocol=TCP",
                "--host=127.0.0.1",
                "--user=root",
            ])
            .arg(format!("--port={}", db.port()))
            .args(["-e", "SELECT 1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!tcp.status.success(), "root logged in without its password");
        assert!(
            String::from_utf8_lossy(&tcp.stderr).contains("1045"),
            "{tcp:?}"
        );
        let (port, dir) = (db.port(), db.guard.dir().to_path_buf());
        drop(db);
        assert!(port_closed(port), "server still listening on {port}");
        assert!(!dir.exists(), "sandbox directory left behind");
    }
}
