//! `docker-volume` assets: a volume found by name through the Docker Engine API, read at the
//! mount point the daemon reports. The containers that write to it can be stopped or paused
//! for the time of a backup ([`Quiesce`]).

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use bollard::{
    Docker,
    models::{ContainerStateStatusEnum, VolumeCreateRequest},
    query_parameters::ListContainersOptionsBuilder,
};
use lifeboat_core::{Payload, SourceFacts, TreeSpec};

use crate::{Source, SourceError};

/// Where Docker listens when neither the plan nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A staging directory a restore leaves inside the volume when it is cut short; never backed
/// up.
pub const STAGING_PREFIX: &str = ".lifeboat-restore-";

/// A connection to one Docker daemon, for one asset's messages.
pub struct DockerClient {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
    asset: String,
    host: String,
}

/// What a container is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRun {
    Running,
    Paused,
    /// Created, exited, dead: not using its volumes now.
    Stopped,
    /// Restarting or being removed: neither safe to read under nor to stop cleanly.
    Busy,
}

impl DockerClient {
    /// Connects to `host`, else `DOCKER_HOST`, else [`DEFAULT_HOST`]. Nothing is sent yet.
    ///
    /// # Errors
    /// The address is not one Lifeboat can use, or the socket does not exist.
    pub fn connect(asset: &str, host: Option<&str>) -> Result<Self, SourceError> {
        let host = host
            .map(str::to_owned)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Unsupported {
                asset: asset.to_owned(),
                reason: format!("start the Docker client: {e}"),
            })?;
        let server = format!("Docker {host}");
        let docker = Docker::connect_with_host(&host).map_err(|e| SourceError::Server {
            asset: asset.to_owned(),
            server: server.clone(),
            reason: e.to_string(),
            hint: Some(
                "start Docker, or point the asset's docker-host (or DOCKER_HOST) at its socket"
                    .to_owned(),
            ),
        })?;
        Ok(Self {
            docker,
            runtime,
            asset: asset.to_owned(),
            host,
        })
    }

    /// The daemon's address, as connected to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs one request on a thread of its own, so that a caller inside an async runtime
    /// (the daemon's) never blocks it.
    fn raw<T: Send>(
        &self,
        fut: impl Future<Output = Result<T, bollard::errors::Error>> + Send,
    ) -> Result<T, bollard::errors::Error> {
        std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(fut))
                .join()
                .unwrap_or_else(|_| {
                    Err(bollard::errors::Error::IOError {
                        err: std::io::Error::other("the Docker client thread panicked"),
                    })
                })
        })
    }

    fn call<T: Send>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>> + Send,
    ) -> Result<T, SourceError> {
        self.raw(fut).map_err(|e| self.error(what, &e))
    }

    fn error(&self, what: &str, e: &bollard::errors::Error) -> SourceError {
        let (reason, hint) = match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => (format!("{what}: {message} (HTTP {status_code})"), None),
            other => (
                format!("{what}: {other}"),
                Some(
                    "is Docker running? Point the asset's docker-host (or DOCKER_HOST) at its socket"
                        .to_owned(),
                ),
            ),
        };
        SourceError::Server {
            asset: self.asset.clone(),
            server: format!("Docker {}", self.host),
            reason,
            hint,
        }
    }

    /// The volume's mount point, or `None` when the daemon has no volume of that name.
    ///
    /// # Errors
    /// The daemon cannot be reached or refuses.
    pub fn volume(&self, name: &str) -> Result<Option<PathBuf>, SourceError> {
        match self.raw(self.docker.inspect_volume(name)) {
            Ok(v) => Ok(Some(PathBuf::from(v.mountpoint))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.error(&format!("inspect volume {name}"), &e)),
        }
    }

    /// Creates a volume with the local driver; returns its mount point.
    ///
    /// # Errors
    /// The daemon refuses.
    pub fn create_volume(&self, name: &str) -> Result<PathBuf, SourceError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let v = self.call(
            &format!("create volume {name}"),
            self.docker.create_volume(request),
        )?;
        Ok(PathBuf::from(v.mountpoint))
    }

    /// Every container that mounts the volume, by name, with what it is doing.
    ///
    /// # Errors
    /// The daemon cannot be reached or refuses.
    pub fn containers_using(
        &self,
        volume: &str,
    ) -> Result<Vec<(String, ContainerRun)>, SourceError> {
        let filters = HashMap::from([("volume", vec![volume])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self.call(
            &format!("list the containers using volume {volume}"),
            self.docker.list_containers(Some(options)),
        )?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .or(c.id)
                    .unwrap_or_default();
                let run = match c.state.map(|s| s.to_string()).as_deref() {
                    Some("running") => ContainerRun::Running,
                    Some("paused") => ContainerRun::Paused,
                    Some("restarting" | "removing" | "stopping") => ContainerRun::Busy,
                    _ => ContainerRun::Stopped,
                };
                (name, run)
            })
            .collect())
    }

    /// What one container is doing.
    ///
    /// # Errors
    /// No such container, or the daemon cannot be reached.
    pub fn container(&self, name: &str) -> Result<ContainerRun, SourceError> {
        let c = self.call(
            &format!("inspect container {name}"),
            self.docker.inspect_container(name, None),
        )?;
        Ok(match c.state.and_then(|s| s.status) {
            Some(ContainerStateStatusEnum::RUNNING) => ContainerRun::Running,
            Some(ContainerStateStatusEnum::PAUSED) => ContainerRun::Paused,
            Some(
                ContainerStateStatusEnum::RESTARTING
                | ContainerStateStatusEnum::REMOVING
                | ContainerStateStatusEnum::STOPPING,
            ) => ContainerRun::Busy,
            _ => ContainerRun::Stopped,
        })
    }

    /// Stops a container (Docker's own timeout, then SIGKILL).
    ///
    /// # Errors
    /// The daemon refuses.
    pub fn stop(&self, name: &str) -> Result<(), SourceError> {
        self.call(
            &format!("stop container {name}"),
            self.docker.stop_container(name, None),
        )
    }

    /// Starts a container.
    ///
    /// # Errors
    /// The daemon refuses.
    pub fn start(&self, name: &str) -> Result<(), SourceError> {
        self.call(
            &format!("start container {name}"),
            self.docker.start_container(name, None),
        )
    }

    /// Pauses a container (its processes frozen).
    ///
    /// # Errors
    /// The daemon refuses.
    pub fn pause(&self, name: &str) -> Result<(), SourceError> {
        self.call(
            &format!("pause container {name}"),
            self.docker.pause_container(name),
        )
    }

    /// Unpauses a container.
    ///
    /// # Errors
    /// The daemon refuses.
    pub fn unpause(&self, name: &str) -> Result<(), SourceError> {
        self.call(
            &format!("unpause container {name}"),
            self.docker.unpause_container(name),
        )
    }

    /// The volume's mount point, checked to exist and to be readable here.
    ///
    /// # Errors
    /// No such volume, or its mount point is not on this host or not readable.
    pub fn mountpoint(&self, volume: &str) -> Result<PathBuf, SourceError> {
        let Some(mountpoint) = self.volume(volume)? else {
            return Err(SourceError::Server {
                asset: self.asset.clone(),
                server: format!("Docker {}", self.host),
                reason: format!("no volume named {volume}"),
                hint: Some(format!(
                    "`docker volume ls` lists the volumes; fix assets.{}.volume",
                    self.asset
                )),
            });
        };
        readable(&self.asset, &mountpoint)?;
        Ok(mountpoint)
    }
}

/// The mount point must be a directory this process can list: Lifeboat reads the volume on
/// the Docker host itself.
fn readable(asset: &str, mountpoint: &Path) -> Result<(), SourceError> {
    fs::read_dir(mountpoint)
        .map(drop)
        .map_err(|e| SourceError::Path {
            asset: asset.to_owned(),
            path: mountpoint.to_owned(),
            reason: format!("the volume's mount point cannot be read here: {e}"),
            hint: Some(
                "run Lifeboat on the Docker host, as root or a user that can read the volume"
                    .to_owned(),
            ),
        })
}

/// Containers stopped or paused for a backup, put back as they were when dropped, by
/// [`Quiesce::resume`], or by the function [`Quiesce::undo`] gives an interrupt handler. A
/// container is recorded before the request that stops or pauses it is sent, so an interrupt
/// at any moment puts back everything that may have been held.
pub struct Quiesce {
    asset: String,
    host: Option<String>,
    held: Arc<Mutex<HeldContainers>>,
}

#[derive(Default)]
struct HeldContainers {
    stopped: Vec<String>,
    paused: Vec<String>,
}

impl Quiesce {
    /// Nothing held yet.
    #[must_use]
    pub fn new(asset: &str, host: Option<&str>) -> Self {
        Self {
            asset: asset.to_owned(),
            host: host.map(str::to_owned),
            held: Arc::default(),
        }
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, HeldContainers> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the running (or paused) containers of `stop`, in order, and pauses the running
    /// ones of `pause`; those already stopped or paused are left alone and not touched
    /// afterwards.
    ///
    /// # Errors
    /// A container is missing, busy (restarting) or refuses; dropping `self` then puts back
    /// the ones already held.
    pub fn hold(&self, stop: &[String], pause: &[String]) -> Result<(), SourceError> {
        if stop.is_empty() && pause.is_empty() {
            return Ok(());
        }
        let asset = &self.asset;
        let docker = DockerClient::connect(asset, self.host.as_deref())?;
        for name in stop {
            match docker.container(name)? {
                ContainerRun::Running | ContainerRun::Paused => {
                    self.lists().stopped.push(name.clone());
                    docker.stop(name)?;
                    tracing::info!("asset {asset}: stopped container {name}");
                }
                ContainerRun::Stopped => {}
                ContainerRun::Busy => return Err(busy(asset, name)),
            }
        }
        for name in pause {
            match docker.container(name)? {
                ContainerRun::Running => {
                    self.lists().paused.push(name.clone());
                    if let Err(e) = docker.pause(name) {
                        self.lists().paused.pop();
                        return Err(e);
                    }
                    tracing::info!("asset {asset}: paused container {name}");
                }
                ContainerRun::Paused | ContainerRun::Stopped => {}
                ContainerRun::Busy => return Err(busy(asset, name)),
            }
        }
        Ok(())
    }

    /// What was stopped and paused, for the manifest.
    #[must_use]
    pub fn describe(&self) -> String {
        let l = self.lists();
        let mut parts = Vec::new();
        if !l.stopped.is_empty() {
            parts.push(format!("stopped {}", l.stopped.join(", ")));
        }
        if !l.paused.is_empty() {
            parts.push(format!("paused {}", l.paused.join(", ")));
        }
        parts.join("; ")
    }

    /// A function that puts back whatever is held when it runs, for an interrupt handler.
    pub fn undo(&self) -> impl FnOnce() + Send + 'static {
        let (asset, host, held) = (self.asset.clone(), self.host.clone(), self.held.clone());
        move || {
            let lists = std::mem::take(
                &mut *held
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let _ = resume(&asset, host.as_deref(), &lists.stopped, &lists.paused);
        }
    }

    /// Unpauses, then starts in the reverse order of stopping.
    ///
    /// # Errors
    /// Every container that could not be put back, named.
    pub fn resume(self) -> Result<(), SourceError> {
        let lists = std::mem::take(&mut *self.lists());
        resume(
            &self.asset,
            self.host.as_deref(),
            &lists.stopped,
            &lists.paused,
        )
    }
}

impl Drop for Quiesce {
    fn drop(&mut self) {
        let lists = std::mem::take(&mut *self.lists());
        let _ = resume(
            &self.asset,
            self.host.as_deref(),
            &lists.stopped,
            &lists.paused,
        );
    }
}

fn busy(asset: &str, name: &str) -> SourceError {
    SourceError::Unsupported {
        asset: asset.to_owned(),
        reason: format!(
            "container {name} is restarting or being removed; try again once it has settled"
        ),
    }
}

fn resume(
    asset: &str,
    host: Option<&str>,
    stopped: &[String],
    paused: &[String],
) -> Result<(), SourceError> {
    if stopped.is_empty() && paused.is_empty() {
        return Ok(());
    }
    let docker = DockerClient::connect(asset, host)?;
    let mut failed = Vec::new();
    for name in paused {
        match docker.unpause(name) {
            Ok(()) => tracing::info!("asset {asset}: unpaused container {name}"),
            Err(e) => failed.push(format!("{name} ({e})")),
        }
    }
    for name in stopped.iter().rev() {
        match docker.start(name) {
            Ok(()) => tracing::info!("asset {asset}: started container {name}"),
            Err(e) => failed.push(format!("{name} ({e})")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SourceError::Server {
            asset: asset.to_owned(),
            server: format!("Docker {}", docker.host()),
            reason: format!("could not put back container(s): {}", failed.join("; ")),
            hint: Some("start them by hand: docker start NAME (or docker unpause NAME)".to_owned()),
        })
    }
}

/// The volume's files as a tree, read at its mount point.
pub struct DockerVolumeSource {
    pub asset: String,
    pub volume: String,
    pub host: Option<String>,
    pub exclude: Vec<String>,
}

impl DockerVolumeSource {
    fn mountpoint(&self) -> Result<PathBuf, SourceError> {
        DockerClient::connect(&self.asset, self.host.as_deref())?.mountpoint(&self.volume)
    }
}

impl Source for DockerVolumeSource {
    fn preflight(&self) -> Result<(), SourceError> {
        self.mountpoint().map(drop)
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let mountpoint = self.mountpoint()?;
        let mut exclude = self.exclude.clone();
        exclude.push(format!("{STAGING_PREFIX}*"));
        let spec = TreeSpec {
            paths: vec![mountpoint.clone()],
            exclude,
            one_file_system: false,
            filter: None,
        };
        let mut facts = SourceFacts::default();
        facts
            .consistency
            .insert("docker-volume".into(), self.volume.clone());
        facts
            .consistency
            .insert("mountpoint".into(), mountpoint.display().to_string());
        Ok((Payload::Tree(spec), facts))
    }

    fn identity(&self) -> String {
        format!("docker volume {}", self.volume)
    }
}
