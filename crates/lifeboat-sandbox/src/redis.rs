use std::{
    fs,
    io::{Read, Write},
    net::{Ipv4Addr, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    SandboxError, fail, free_port,
    guard::{Guard, Server},
    temp_dir,
};

/// A scratch Redis: `redis-server` on a free port, persisting nothing unless told to.
#[derive(Debug)]
pub struct RedisSandbox {
    guard: Guard,
    port: u16,
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
        let mut guard = Guard::new(dir);
        guard.running(Server::Child(child));
        let mut sandbox = Self { guard, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if sandbox.ping() {
                return Ok(sandbox);
            }
            if let Some(Ok(Some(status))) = sandbox.guard.child().map(Child::try_wait) {
                let log =
                    fs::read_to_string(sandbox.guard.dir().join("redis.log")).unwrap_or_default();
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

    /// The server's data directory (`dump.rdb` is written here on `SAVE`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.guard.dir()
    }

    /// Stops the server and keeps its directory until the sandbox is dropped.
    pub fn shutdown(&mut self) {
        self.guard.stop();
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port_closed;

    #[test]
    fn redis_sandbox_answers_and_cleans_up() {
        let redis = RedisSandbox::start(None).expect("redis-server is installed");
        assert_ne!(redis.port(), 6379);
        assert!(redis.ping());
        let (port, dir) = (redis.port(), redis.dir().to_path_buf());
        drop(redis);
        assert!(port_closed(port));
        assert!(!dir.exists());
    }
}
