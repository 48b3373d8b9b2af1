use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

mod recovery;

use super::{
    SandboxError, fail, free_port,
    guard::{Guard, Server},
    server_user, temp_dir,
};

/// A scratch PostgreSQL cluster: `initdb` and `pg_ctl` in a temporary directory, trust
/// authentication for user `postgres`, listening on 127.0.0.1 only.
#[derive(Debug)]
pub struct PostgresSandbox {
    guard: Guard,
    bin: PathBuf,
    port: u16,
    major: u32,
    user: Option<(u32, u32)>,
    password: Option<String>,
    /// `None` for a scratch cluster (TCP on 127.0.0.1, user `postgres`); a recovered
    /// cluster is reached through its socket only, as the given role.
    recovered: Option<recovery::Recovered>,
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
        Self::launch(major, None)
    }

    /// Like [`PostgresSandbox::start`], but connections over TCP need user `postgres`'s
    /// `password` (scram-sha-256). The password goes through a 0600 file, never argv.
    ///
    /// # Errors
    /// As [`PostgresSandbox::start`].
    pub fn start_with_password(major: Option<u32>, password: &str) -> Result<Self, SandboxError> {
        Self::launch(major, Some(password))
    }

    fn launch(major: Option<u32>, password: Option<&str>) -> Result<Self, SandboxError> {
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
        // From here on, the directory goes whenever the sandbox does not start.
        let guard = Guard::new(dir.clone());
        let user = server_user("postgres");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| fail(WHAT, e.to_string()))?;
        }
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        let mut sandbox = Self {
            guard,
            bin,
            port: 0,
            major,
            user,
            password: password.map(str::to_owned),
            recovered: None,
        };
        let mut auth = vec!["--auth=trust".to_owned()];
        if let Some(pw) = password {
            let file = sandbox.guard.dir().join("pwfile");
            fs::write(&file, pw)
                .and_then(|()| fs::set_permissions(&file, fs::Permissions::from_mode(0o600)))
                .map_err(|e| fail(WHAT, e.to_string()))?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(&file, Some(uid), Some(gid))
                    .map_err(|e| fail(WHAT, e.to_string()))?;
            }
            auth = vec![
                "--auth-local=trust".to_owned(),
                "--auth-host=scram-sha-256".to_owned(),
                format!("--pwfile={}", file.display()),
            ];
        }
        let mut args = vec![
            "-D",
            "data",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        args.extend(auth.iter().map(String::as_str));
        let initdb = sandbox.run(WHAT, "initdb", &args);
        let _ = fs::remove_file(sandbox.guard.dir().join("pwfile"));
        initdb?;
        let mut last = String::new();
        for _ in 0..3 {
            sandbox.port = free_port().map_err(|e| fail(WHAT, e.to_string()))?;
            match sandbox.start_server() {
                Ok(()) => return Ok(sandbox),
                Err(e) => last = e.reason,
            }
        }
        Err(fail(WHAT, last))
    }

    /// `pg_ctl start` on the sandbox's port, then its postmaster registered for Ctrl-C.
    fn start_server(&mut self) -> Result<(), SandboxError> {
        let options = match &self.recovered {
            None => format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                self.port,
                self.guard.dir().display()
            ),
            Some(r) => r.options(self.port, self.guard.dir()),
        };
        let wait = if self.recovered.is_some() {
            "3600"
        } else {
            "60"
        };
        self.run(
            "PostgreSQL",
            "pg_ctl",
            &[
                "-D",
                "data",
                "-l",
                "server.log",
                "-w",
                "-t",
                wait,
                "-o",
                &options,
                "start",
            ],
        )?;
        let dir = self.guard.dir().to_path_buf();
        let pid_file = fs::read_to_string(dir.join("data/postmaster.pid")).unwrap_or_default();
        let pid = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let (pg_ctl, user) = (self.bin.join("pg_ctl"), self.user);
        let stop = move || {
            let mut cmd = Command::new(&pg_ctl);
            cmd.args(["-D", "data", "-m", "immediate", "-w", "stop"])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
            let _ = cmd.status();
        };
        self.guard.running(Server::Daemon {
            pid,
            stop: Box::new(stop),
        });
        Ok(())
    }

    /// Stops the server (cleanly), runs `f` on its data directory, and starts it again on the
    /// same port: nothing of the files is cached any more, so tests can damage a table's file
    /// the way a disk would.
    ///
    /// # Errors
    /// When the server does not stop or start; its log's tail is in the message.
    pub fn stopped<T>(&mut self, f: impl FnOnce(&Path) -> T) -> Result<T, SandboxError> {
        self.run(
            "PostgreSQL",
            "pg_ctl",
            &["-D", "data", "-m", "fast", "-w", "stop"],
        )?;
        // Stopped already: the guard only forgets it.
        self.guard.stop();
        let out = f(&self.guard.dir().join("data"));
        self.start_server()?;
        Ok(out)
    }

    fn run(
        &self,
        what: &'static str,
        program: &str,
        args: &[&str],
    ) -> Result<String, SandboxError> {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args)
            .current_dir(self.guard.dir())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .output()
            .map_err(|e| fail(what, format!("run {program}: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let log = fs::read_to_string(self.guard.dir().join("server.log")).unwrap_or_default();
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
        let mut cmd = Command::new(self.bin.join("psql"));
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        let (host, role) = match &self.recovered {
            None => ("127.0.0.1".to_owned(), "postgres"),
            Some(r) => (self.guard.dir().display().to_string(), r.role.as_str()),
        };
        let out = cmd
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &host,
                "-U",
                role,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port_closed;

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
        let (port, dir) = (pg.port(), pg.guard.dir().to_path_buf());
        drop(pg);
        assert!(port_closed(port), "server still listening on {port}");
        assert!(!dir.exists(), "sandbox directory left behind");
    }
}
