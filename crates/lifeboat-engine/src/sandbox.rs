//! Sandboxes: throw-away servers Lifeboat starts itself, on 127.0.0.1 at a free port in a
//! temporary directory, to restore into and check. Drills use them; so do Lifeboat's own tests
//! (through `lifeboat-testing`), which never touch the machine's own servers.
//!
//! A sandbox is stopped and its directory removed when it is dropped, and also when Lifeboat is
//! interrupted ([`stop_all`], called by the interrupt handler).

use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// A sandbox that could not be started; the message names the program and says what to do.
#[derive(Debug, thiserror::Error)]
#[error("start {what} sandbox: {reason}")]
pub struct SandboxError {
    pub what: &'static str,
    pub reason: String,
}

fn fail(what: &'static str, reason: impl Into<String>) -> SandboxError {
    SandboxError {
        what,
        reason: reason.into(),
    }
}

/// Servers now running, by process id, with their directories: what an interrupt stops.
static RUNNING: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

fn register(pid: u32, dir: &Path) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((pid, dir.to_path_buf()));
}

fn unregister(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|(p, _)| *p != pid);
}

/// Kills every running sandbox server and removes its directory.
pub fn stop_all() {
    let running = std::mem::take(
        &mut *RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (pid, dir) in running {
        kill(pid, "KILL");
        let _ = fs::remove_dir_all(dir);
    }
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn temp_dir(prefix: &str) -> Result<PathBuf, std::io::Error> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.keep())
}

/// The system user a server runs as: PostgreSQL refuses to run as root, so root hands the
/// sandbox to the `postgres` user.
fn server_user() -> Option<(u32, u32)> {
    let me = fs::metadata("/proc/self").ok()?;
    if std::os::unix::fs::MetadataExt::uid(&me) != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&"postgres") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// A scratch PostgreSQL cluster: `initdb` and `pg_ctl` in a temporary directory, trust
/// authentication for user `postgres`, listening on 127.0.0.1 only.
#[derive(Debug)]
pub struct PostgresSandbox {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    major: u32,
    pid: u32,
    user: Option<(u32, u32)>,
}

/// Installed PostgreSQL server versions (`/usr/lib/postgresql/<major>/bin`), newest first.
#[must_use]
pub fn postgres_versions() -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort_by_key(|v| std::cmp::Reverse(v.0));
    found
}

impl PostgresSandbox {
    /// Starts a cluster of the given major version, or of the newest installed one.
    ///
    /// # Errors
    /// No server binaries, or `initdb`/`pg_ctl` failing (their output is in the message).
    pub fn start(major: Option<u32>) -> Result<Self, SandboxError> {
        const WHAT: &str = "PostgreSQL";
        let versions = postgres_versions();
        let (major, bin) = match major {
            Some(m) => versions.into_iter().find(|(v, _)| *v == m).ok_or_else(|| {
                fail(
                    WHAT,
                    format!(
                        "no PostgreSQL {m} server installed (hint: apt-get install postgresql-{m})"
                    ),
                )
            })?,
            None => versions.into_iter().next().ok_or_else(|| {
                fail(
                    WHAT,
                    "no PostgreSQL server installed (hint: apt-get install postgresql)",
                )
            })?,
        };
        let dir = temp_dir(".lifeboat-sandbox-pg-").map_err(|e| fail(WHAT, e.to_string()))?;
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| fail(WHAT, e.to_string()))?;
        }
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        let mut sandbox = Self {
            dir,
            bin,
            port: 0,
            major,
            pid: 0,
            user,
        };
        sandbox.run(
            WHAT,
            "initdb",
            &[
                "-D",
                "data",
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let mut last = String::new();
        for _ in 0..3 {
            sandbox.port = free_port().map_err(|e| fail(WHAT, e.to_string()))?;
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                sandbox.port,
                sandbox.dir.display()
            );
            match sandbox.run(
                WHAT,
                "pg_ctl",
                &[
                    "-D",
                    "data",
                    "-l",
                    "server.log",
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                    "start",
                ],
            ) {
                Ok(_) => {
                    let pid_file = fs::read_to_string(sandbox.dir.join("data/postmaster.pid"))
                        .unwrap_or_default();
                    sandbox.pid = pid_file
                        .lines()
                        .next()
                        .and_then(|l| l.trim().parse().ok())
                        .unwrap_or(0);
                    register(sandbox.pid, &sandbox.dir);
                    return Ok(sandbox);
                }
                Err(e) => last = e.reason,
            }
        }
        Err(fail(WHAT, last))
    }

    fn run(
        &self,
        what: &'static str,
        program: &str,
        args: &[&str],
    ) -> Result<String, SandboxError> {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .output()
            .map_err(|e| fail(what, format!("run {program}: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: String = log
                .chars()
                .rev()
                .take(1500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(fail(
                what,
                format!(
                    "{program} exited with {}: {} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    tail.trim()
                ),
            ))
        }
    }

    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    #[must_use]
    pub const fn major(&self) -> u32 {
        self.major
    }

    /// Directory of the matching client binaries (`pg_dump`, `pg_restore`, `psql`).
    #[must_use]
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL through `psql` and returns its unaligned, tuples-only output.
    ///
    /// # Errors
    /// When psql fails; its stderr is in the message.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, SandboxError> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail("PostgreSQL", format!("run psql: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(fail(
                "PostgreSQL",
                format!("psql: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ))
        }
    }
}

impl Drop for PostgresSandbox {
    fn drop(&mut self) {
        let _ = self.run(
            "PostgreSQL",
            "pg_ctl",
            &["-D", "data", "-m", "immediate", "-w", "stop"],
        );
        if self.pid != 0 {
            unregister(self.pid);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A scratch Redis: `redis-server` on a free port, persisting nothing unless told to.
#[derive(Debug)]
pub struct RedisSandbox {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl RedisSandbox {
    /// Starts `redis-server`; `rdb`, when given, is loaded at start (its data becomes the
    /// sandbox's).
    ///
    /// # Errors
    /// No `redis-server`, or it does not answer PING within 20 s.
    pub fn start(rdb: Option<&Path>) -> Result<Self, SandboxError> {
        Self::launch(rdb, None)
    }

    /// Like [`RedisSandbox::start`], with an ACL user that needs `AUTH user password` and the
    /// default user switched off. The password goes into a 0600 config file, never argv.
    ///
    /// # Errors
    /// As [`RedisSandbox::start`].
    pub fn start_with_user(
        rdb: Option<&Path>,
        user: &str,
        password: &str,
    ) -> Result<Self, SandboxError> {
        Self::launch(rdb, Some((user, password)))
    }

    fn launch(rdb: Option<&Path>, acl: Option<(&str, &str)>) -> Result<Self, SandboxError> {
        const WHAT: &str = "Redis";
        let dir = temp_dir(".lifeboat-sandbox-redis-").map_err(|e| fail(WHAT, e.to_string()))?;
        if let Some(rdb) = rdb {
            fs::copy(rdb, dir.join("dump.rdb"))
                .map_err(|e| fail(WHAT, format!("copy {}: {e}", rdb.display())))?;
        }
        let conf = dir.join("redis.conf");
        let mut text = String::new();
        if let Some((user, password)) = acl {
            text.push_str(&format!(
                "user default off\nuser {user} on >{password} ~* &* +@all\n"
            ));
        }
        fs::write(&conf, text)
            .and_then(|()| fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)))
            .map_err(|e| fail(WHAT, format!("write {}: {e}", conf.display())))?;
        let port = free_port().map_err(|e| fail(WHAT, e.to_string()))?;
        let child = Command::new("redis-server")
            .arg(&conf)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
            ])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                let _ = fs::remove_dir_all(&dir);
                fail(
                    WHAT,
                    format!("run redis-server: {e} (hint: apt-get install redis-server)"),
                )
            })?;
        register(child.id(), &dir);
        let mut sandbox = Self { dir, port, child };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if sandbox.ping() {
                return Ok(sandbox);
            }
            if let Ok(Some(status)) = sandbox.child.try_wait() {
                let log = fs::read_to_string(sandbox.dir.join("redis.log")).unwrap_or_default();
                return Err(fail(
                    WHAT,
                    format!("redis-server exited with {status}: {}", log.trim()),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(fail(WHAT, "redis-server did not answer PING within 20 s"))
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 64];
        // A server that wants AUTH first answers too: it is up.
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
    }

    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        unregister(self.child.id());
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_closed(port: u16) -> bool {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
    }

    #[test]
    fn postgres_sandbox_runs_apart_and_cleans_up() {
        let pg = PostgresSandbox::start(None).expect("a PostgreSQL server is installed");
        assert_ne!(pg.port(), 5432, "never the machine's own server");
        assert_eq!(pg.psql("postgres", "SELECT 40 + 2").unwrap(), "42");
        pg.psql("postgres", "CREATE DATABASE scratch").unwrap();
        assert_eq!(
            pg.psql("scratch", "SELECT current_setting('port')")
                .unwrap(),
            pg.port().to_string()
        );
        let (port, dir) = (pg.port(), pg.dir.clone());
        drop(pg);
        assert!(port_closed(port), "server still listening on {port}");
        assert!(!dir.exists(), "sandbox directory left behind");
    }

    #[test]
    fn redis_sandbox_answers_and_cleans_up() {
        let redis = RedisSandbox::start(None).expect("redis-server is installed");
        assert_ne!(redis.port(), 6379);
        assert!(redis.ping());
        let (port, dir) = (redis.port(), redis.dir.clone());
        drop(redis);
        assert!(port_closed(port));
        assert!(!dir.exists());
    }
}
