//! [`DockerStandIn`]: the Docker Engine API's documented answers on a unix socket, for
//! `docker-volume` assets where no Docker daemon can run (this sandbox). Its containers are
//! real processes that write a counter into their volume; the log says what was stopped,
//! paused and started, and the counter each left behind.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};

const SERVER: &str = include_str!("docker_stand_in.py");

/// A container of the stand-in.
pub struct StandInContainer {
    pub name: &'static str,
    /// Volumes it mounts (what `docker ps --filter volume=` finds).
    pub volumes: Vec<&'static str>,
    /// A file it rewrites every 10 ms with a growing counter while it runs.
    pub writes: Option<PathBuf>,
    pub running: bool,
}

/// A Docker Engine API stand-in, stopped (with its containers) when dropped.
pub struct DockerStandIn {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    root: PathBuf,
}

impl DockerStandIn {
    /// Serves `volumes` (name, mount point) and `containers` on a socket in `dir`; volumes
    /// created through the API go under `dir/volumes/NAME/_data`.
    ///
    /// # Panics
    /// When python3 cannot start the server.
    #[must_use]
    pub fn start(dir: &Path, volumes: &[(&str, &Path)], containers: &[StandInContainer]) -> Self {
        let socket = dir.join("docker.sock");
        let log = dir.join("docker-api.jsonl");
        let root = dir.join("volumes");
        let state = json!({
            "root": root,
            "volumes": volumes.iter().map(|(n, p)| ((*n).to_owned(), json!(p))).collect::<serde_json::Map<_, _>>(),
            "containers": containers.iter().map(|c| (c.name.to_owned(), json!({
                "volumes": c.volumes,
                "writes": c.writes,
                "state": if c.running { "running" } else { "exited" },
            }))).collect::<serde_json::Map<_, _>>(),
        });
        let state_file = dir.join("docker-state.json");
        fs::write(&state_file, state.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", state_file.display()));
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(&socket)
            .arg(&state_file)
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start python3 for the Docker API stand-in: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the stand-in's first line");
        assert_eq!(
            line.trim(),
            "ready",
            "the Docker API stand-in did not start"
        );
        Self {
            child,
            socket,
            log,
            root,
        }
    }

    /// `unix://…`, for `DOCKER_HOST` or an asset's `docker-host`.
    #[must_use]
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Where a volume created through the API lives.
    #[must_use]
    pub fn created_mountpoint(&self, volume: &str) -> PathBuf {
        self.root.join(volume).join("_data")
    }

    /// Everything logged so far: requests (`{"op": "GET /volumes/x"}`) and what they did
    /// (`{"op": "stopped", "name": …, "counter": …}`).
    #[must_use]
    pub fn log(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The log's actions on containers and volumes, as `"stopped app"`, `"created vol"`.
    #[must_use]
    pub fn actions(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter_map(|e| {
                let op = e["op"].as_str()?;
                let who = e["name"].as_str().or(e["volume"].as_str())?;
                Some(format!("{op} {who}"))
            })
            .collect()
    }

    /// The counter a container's file held when it was stopped or paused, the last time.
    #[must_use]
    pub fn counter_when_held(&self, container: &str) -> Option<String> {
        self.log()
            .iter()
            .rev()
            .find(|e| e["name"] == container && (e["op"] == "stopped" || e["op"] == "paused"))
            .and_then(|e| e["counter"].as_str().map(str::to_owned))
    }
}

impl Drop for DockerStandIn {
    fn drop(&mut self) {
        // SIGTERM: the server stops its container processes before it exits.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id().cast_signed()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
