//! A cluster restored from a base backup, started once to replay the write-ahead log up to its
//! recovery target: reachable through a socket in its own directory only, with an
//! authentication file of its own (the restored `pg_hba.conf` may allow no local login), and
//! never archiving (its WAL must not reach the asset's archive).

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{PostgresSandbox, postgres_versions};
use crate::{SandboxError, fail, free_port, guard::Guard, server_user};

const WHAT: &str = "PostgreSQL recovery";
const HBA: &str = "lifeboat_hba.conf";

#[derive(Debug)]
pub(super) struct Recovered {
    /// The role psql connects as (it exists in the restored cluster).
    pub role: String,
    /// Whether the files must be durable when the server stops (a restore), or may skip
    /// fsync (a drill's throw-away copy).
    durable: bool,
}

impl Recovered {
    pub(super) fn options(&self, port: u16, dir: &Path) -> String {
        let mut o = format!(
            "-p {port} -k {dir} -c listen_addresses='' -c hba_file={dir}/{HBA} -c archive_mode=off",
            dir = dir.display()
        );
        if !self.durable {
            o.push_str(" -c fsync=off");
        }
        o
    }
}

impl PostgresSandbox {
    /// Starts the cluster in `dir/data` (a base backup with `recovery.signal` and its recovery
    /// settings written) with the server binaries of `major`, and waits until it accepts
    /// connections. `dir` belongs to the sandbox from here on and is removed when it is
    /// dropped: move `dir/data` out after [`PostgresSandbox::shut_down`] to keep it.
    ///
    /// # Errors
    /// No server of that version, or the server failing to start or to recover (its log's
    /// tail is in the message).
    pub fn recover(
        dir: PathBuf,
        major: u32,
        role: &str,
        durable: bool,
    ) -> Result<Self, SandboxError> {
        let guard = Guard::new(dir);
        let dir = guard.dir().to_path_buf();
        let (_, bin) = postgres_versions()
            .into_iter()
            .find(|(v, _)| *v == major)
            .ok_or_else(|| {
                fail(
                    WHAT,
                    format!(
                        "the base backup is of PostgreSQL {major}, whose server is not installed (hint: apt-get install postgresql-{major})"
                    ),
                )
            })?;
        fs::write(
            dir.join(HBA),
            "# Lifeboat's recovery start: local socket only.\nlocal all all trust\n",
        )
        .map_err(|e| fail(WHAT, e.to_string()))?;
        let user = server_user("postgres");
        if let Some((uid, gid)) = user {
            chown_tree(&dir, uid, gid).map_err(|e| fail(WHAT, e.to_string()))?;
        }
        for (path, mode) in [(dir.clone(), 0o700), (dir.join("data"), 0o700)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| fail(WHAT, format!("{}: {e}", path.display())))?;
        }
        let mut sandbox = Self {
            guard,
            bin,
            port: free_port().map_err(|e| fail(WHAT, e.to_string()))?,
            major,
            user,
            password: None,
            recovered: Some(Recovered {
                role: role.to_owned(),
                durable,
            }),
        };
        sandbox.start_server()?;
        Ok(sandbox)
    }

    /// Waits until recovery ended and the server was promoted (`pg_is_in_recovery()` false).
    ///
    /// # Errors
    /// The server stopped (recovery failed) or still recovers after `limit`.
    pub fn wait_promoted(&self, limit: Duration) -> Result<(), SandboxError> {
        let start = Instant::now();
        loop {
            match self.psql("postgres", "SELECT pg_is_in_recovery()") {
                Ok(v) if v == "f" => return Ok(()),
                Ok(_) if start.elapsed() < limit => {}
                Ok(_) => {
                    return Err(fail(
                        WHAT,
                        format!(
                            "still recovering after {} s: {}",
                            limit.as_secs(),
                            self.log_tail(800)
                        ),
                    ));
                }
                Err(e) => {
                    return Err(fail(
                        WHAT,
                        format!("the server stopped: {} {}", e.reason, self.log_tail(1200)),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log as written so far.
    #[must_use]
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.guard.dir().join("server.log")).unwrap_or_default()
    }

    fn log_tail(&self, chars: usize) -> String {
        let log = self.server_log();
        let start = log.len().saturating_sub(chars);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        log[start..].trim().to_owned()
    }

    /// Stops the server cleanly (a shutdown checkpoint), leaving the directory in place.
    ///
    /// # Errors
    /// `pg_ctl stop` failed.
    pub fn shut_down(&mut self) -> Result<(), SandboxError> {
        self.run(WHAT, "pg_ctl", &["-D", "data", "-m", "fast", "-w", "stop"])?;
        self.guard.stop();
        Ok(())
    }

    /// The sandbox's own directory (the data directory is `data` inside it).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.guard.dir()
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
