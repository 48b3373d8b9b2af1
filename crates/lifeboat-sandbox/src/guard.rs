//! The one guard every sandbox holds: its directory and the server running in it. While a
//! server runs it is registered, so that an interrupt stops it ([`crate::stop_all`]);
//! dropping the guard stops the server and removes the directory.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Child,
};

use crate::{register, unregister};

/// A sandbox's server process.
pub(crate) enum Server {
    /// A child of this process (Redis, MariaDB): killed to stop it.
    Child(Child),
    /// A server that detached from its starter (PostgreSQL's postmaster, started by
    /// `pg_ctl`), with what stops it.
    Daemon {
        pid: u32,
        stop: Box<dyn FnMut() + Send + Sync>,
    },
}

impl Server {
    fn pid(&self) -> u32 {
        match self {
            Self::Child(c) => c.id(),
            Self::Daemon { pid, .. } => *pid,
        }
    }
}

pub(crate) struct Guard {
    dir: PathBuf,
    server: Option<Server>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("dir", &self.dir)
            .field("pid", &self.server.as_ref().map(Server::pid))
            .finish()
    }
}

impl Guard {
    /// Guards `dir`, which is removed when the guard drops. No server runs yet.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, server: None }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `server` now runs in the sandbox (any earlier one is stopped first).
    pub fn running(&mut self, server: Server) {
        self.stop();
        // Pid 0 would be the whole process group to `kill`: such a server is only stopped by
        // its own means.
        if server.pid() != 0 {
            register(server.pid(), &self.dir);
        }
        self.server = Some(server);
    }

    /// The server, when it is a child of this process.
    pub fn child(&mut self) -> Option<&mut Child> {
        match &mut self.server {
            Some(Server::Child(c)) => Some(c),
            _ => None,
        }
    }

    /// Stops the server, if one runs; the directory stays until the guard drops.
    pub fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        let pid = server.pid();
        match server {
            Server::Child(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Server::Daemon { mut stop, .. } => stop(),
        }
        if pid != 0 {
            unregister(pid);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
