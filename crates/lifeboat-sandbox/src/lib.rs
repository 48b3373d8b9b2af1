//! Sandboxes: throw-away servers Lifeboat starts itself, on 127.0.0.1 at a free port in a
//! temporary directory, to restore into and check. Drills use them; so do Lifeboat's own tests
//! (through `lifeboat-testing`), which never touch the machine's own servers.
//!
//! Every sandbox holds one guard (`guard.rs`): it is stopped and its directory removed when it
//! is dropped, and also when Lifeboat is interrupted ([`stop_all`], called by the interrupt
//! handler).

mod guard;
mod mariadb;
mod postgres;
mod redis;

pub use mariadb::MariadbSandbox;
pub use postgres::{PostgresSandbox, postgres_versions};
pub use redis::RedisSandbox;

use std::{
    fs,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
};

/// A sandbox that could not be started; the message names the program and says what to do.
#[derive(Debug, thiserror::Error)]
#[error("start {what} sandbox: {reason}")]
pub struct SandboxError {
    pub what: &'static str,
    pub reason: String,
}

pub(crate) fn fail(what: &'static str, reason: impl Into<String>) -> SandboxError {
    SandboxError {
        what,
        reason: reason.into(),
    }
}

/// Servers now running, by process id, with their directories: what an interrupt stops.
static RUNNING: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

pub(crate) fn register(pid: u32, dir: &Path) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((pid, dir.to_path_buf()));
}

pub(crate) fn unregister(pid: u32) {
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

pub(crate) fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

pub(crate) fn free_port() -> Result<u16, std::io::Error> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

pub(crate) fn temp_dir(prefix: &str) -> Result<PathBuf, std::io::Error> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.keep())
}

/// The system user a server runs as when Lifeboat is root (`postgres`, `mysql`): the servers
/// refuse to run as root, so root hands the sandbox to that user. `None` when not root.
pub(crate) fn server_user(name: &str) -> Option<(u32, u32)> {
    let me = fs::metadata("/proc/self").ok()?;
    if std::os::unix::fs::MetadataExt::uid(&me) != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&name) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

#[cfg(test)]
pub(crate) fn port_closed(port: u16) -> bool {
    std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}
