//! `docker-volume` assets: a volume found by name through the Docker Engine API and read at
//! the mount point the daemon reports. The containers named in `stop` and `pause` are stopped
//! or paused for the backup; a restore stops them all, fills the volume through a staging
//! directory inside it, swaps the content in by rename and starts them again.

use std::{
    fs,
    path::{Path, PathBuf},
};

use lifeboat_core::Manifest;
use lifeboat_plan::{DockerVolumeSpec, ResolvedAsset};
use lifeboat_sources::{
    Source, SourceError,
    docker::{ContainerRun, DockerClient, DockerVolumeSource, Quiesce, STAGING_PREFIX},
};

use super::{
    contract::{Description, Held, Kind},
    files::{ensure_empty_dir, live_tree, sandbox_tree},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, shell_checks},
};

pub(super) struct DockerVolume<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a DockerVolumeSpec,
}

/// Where a restore writes: the asset's own volume, another volume, or a directory.
enum Target {
    Volume { name: String, in_place: bool },
    Directory(PathBuf),
}

impl DockerVolume<'_> {
    fn client(&self) -> Result<DockerClient, SourceError> {
        DockerClient::connect(&self.asset.name, self.spec.docker_host.as_deref())
    }

    fn target(&self, to: Option<&Path>) -> Result<Target, EngineError> {
        let Some(to) = to else {
            return Ok(Target::Volume {
                name: self.spec.volume.clone(),
                in_place: true,
            });
        };
        if to.is_absolute() {
            return Ok(Target::Directory(to.to_owned()));
        }
        let name = to.to_string_lossy().into_owned();
        if !lifeboat_plan::is_docker_name(&name) {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: --to {name:?} is neither a volume name nor an absolute path",
                    self.asset.name
                ),
                Some(
                    "--to NEW_VOLUME restores into a volume (created when missing), --to /abs/dir into a directory",
                ),
            ));
        }
        let in_place = name == self.spec.volume;
        Ok(Target::Volume { name, in_place })
    }

    /// The containers a restore stops: every one named in the plan that is up, after checking
    /// that no other running container uses the volume.
    fn to_stop(&self, docker: &DockerClient, volume: &str) -> Result<Vec<String>, EngineError> {
        let named: Vec<&String> = self.spec.stop.iter().chain(&self.spec.pause).collect();
        let users = docker.containers_using(volume)?;
        let strangers: Vec<&str> = users
            .iter()
            .filter(|(name, run)| *run != ContainerRun::Stopped && !named.contains(&name))
            .map(|(name, _)| name.as_str())
            .collect();
        if !strangers.is_empty() {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: volume {volume} is in use by running container(s) {}, which the plan does not stop",
                    self.asset.name,
                    strangers.join(", ")
                ),
                Some(&format!(
                    "add them to assets.{}.stop, or stop them first (docker stop {})",
                    self.asset.name,
                    strangers.join(" ")
                )),
            ));
        }
        let mut up = Vec::new();
        for name in named {
            match docker.container(name)? {
                ContainerRun::Stopped => {}
                _ => up.push(name.clone()),
            }
        }
        Ok(up)
    }
}

impl Kind for DockerVolume<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(DockerVolumeSource {
            asset: self.asset.name.clone(),
            volume: self.spec.volume.clone(),
            host: self.spec.docker_host.clone(),
            exclude: self.spec.exclude.clone(),
        }))
    }

    fn hold_for_backup(&self) -> Result<Option<Held>, EngineError> {
        if self.spec.stop.is_empty() && self.spec.pause.is_empty() {
            return Ok(None);
        }
        let q = Quiesce::new(&self.asset.name, self.spec.docker_host.as_deref());
        // Registered first: an interrupt while the containers are being stopped puts them back.
        let interrupt = crate::interrupt::undo_on_interrupt(q.undo());
        q.hold(&self.spec.stop, &self.spec.pause)?;
        Ok(Some(Held::new(q.describe(), interrupt, move || {
            q.resume().map_err(EngineError::from)
        })))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        let target = self.target(job.req.to.as_deref())?;
        let manifest = job.manifest.take().ok_or_else(|| {
            EngineError::usage(
                format!("snapshot {} was not written by Lifeboat", job.snap.short_id),
                Some("restore it with restic"),
            )
        })?;
        let paths = lifeboat_repo::original_paths(&manifest);
        let [recorded] = paths.as_slice() else {
            return Err(EngineError::usage(
                format!(
                    "snapshot {} of asset {} does not hold one volume",
                    job.snap.short_id, self.asset.name
                ),
                Some("pick another snapshot with --snapshot ID"),
            ));
        };
        let (volume, in_place) = match target {
            Target::Directory(dest) => {
                ensure_empty_dir(&dest)?;
                job.plan(RestoreAction::WriteTree { dest: dest.clone() });
                let summary = if job.req.dry_run {
                    dry_summary(job)?
                } else {
                    job.repo.restore_path(job.snap, recorded, &dest)?
                };
                job.report.bytes = summary.bytes;
                job.report.files = Some(summary);
                return Ok(());
            }
            Target::Volume { name, in_place } => (name, in_place),
        };
        let docker = self.client()?;
        let existing = docker.volume(&volume)?;
        // In place, the plan's containers are stopped for the swap; another volume is filled
        // only when nothing runs on it (it must be empty anyway).
        let stop = match &existing {
            Some(_) if in_place => self.to_stop(&docker, &volume)?,
            Some(_) => {
                let running: Vec<String> = docker
                    .containers_using(&volume)?
                    .into_iter()
                    .filter(|(_, run)| *run != ContainerRun::Stopped)
                    .map(|(name, _)| name)
                    .collect();
                if !running.is_empty() {
                    return Err(EngineError::usage(
                        format!(
                            "restore asset {} into volume {volume}: it is in use by running container(s) {}",
                            self.asset.name,
                            running.join(", ")
                        ),
                        Some("name a new volume (it is created), or stop them first"),
                    ));
                }
                Vec::new()
            }
            None => Vec::new(),
        };
        if let Some(mountpoint) = &existing
            && !in_place
            && has_content(mountpoint)?
        {
            return Err(EngineError::usage(
                format!(
                    "restore asset {} into volume {volume}: the volume is not empty",
                    self.asset.name
                ),
                Some("name a new volume (it is created), or remove this one first"),
            ));
        }
        let safety = in_place && existing.is_some() && !job.req.skip_safety_snapshot;
        if existing.is_none() {
            job.plan(RestoreAction::CreateVolume {
                volume: volume.clone(),
            });
        }
        if !stop.is_empty() {
            job.plan(RestoreAction::StopContainers {
                containers: stop.clone(),
            });
        }
        if safety {
            job.plan_safety_copy();
        }
        job.plan(RestoreAction::ReplaceVolume {
            volume: volume.clone(),
        });
        if !stop.is_empty() {
            job.plan(RestoreAction::StartContainers {
                containers: stop.iter().rev().cloned().collect(),
            });
        }
        if job.req.dry_run {
            let summary = dry_summary(job)?;
            job.report.bytes = summary.bytes;
            job.report.files = Some(summary);
            return Ok(());
        }
        let mountpoint = match existing {
            Some(mountpoint) => mountpoint,
            None => docker.create_volume(&volume)?,
        };
        // Stopped until the end, whatever happens (an interrupt included).
        let held = Quiesce::new(&self.asset.name, self.spec.docker_host.as_deref());
        let _on_interrupt = crate::interrupt::undo_on_interrupt(held.undo());
        held.hold(&stop, &[])?;
        if safety {
            job.safety_copy(std::slice::from_ref(&mountpoint), None)?;
        }
        let summary = fill_volume(job, recorded, &mountpoint)?;
        job.report.bytes = summary.bytes;
        job.report.files = Some(summary);
        held.resume().map_err(|e| {
            EngineError::usage(
                format!("asset {}: the volume is restored, but {e}", self.asset.name),
                Some("start the containers by hand: docker start NAME"),
            )
        })
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        sandbox_tree(self.asset, job)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let mountpoint = self.client()?.mountpoint(&self.spec.volume)?;
        let mut out = live_tree(std::slice::from_ref(&mountpoint), manifest);
        out.checks = shell_checks(
            &self.asset.checks,
            base,
            &[
                ("LIFEBOAT_PATHS", mountpoint.display().to_string()),
                ("LIFEBOAT_VOLUME", self.spec.volume.clone()),
            ],
        );
        Ok(out)
    }

    fn describe(&self) -> Description {
        let host = self
            .spec
            .docker_host
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        Description {
            location: format!("docker volume {}{host}", self.spec.volume),
            secrets: Vec::new(),
            by_hand: format!(
                "the files are under DIR/{}/files/ at the volume's mount point when it was backed up: `docker volume create {}`, then copy them into the path `docker volume inspect -f '{{{{.Mountpoint}}}}' {}` prints, with its containers stopped",
                self.asset.name, self.spec.volume, self.spec.volume
            ),
        }
    }
}

/// What a restore would write, from a dry run of the whole tree.
fn dry_summary(job: &RestoreJob<'_>) -> Result<lifeboat_repo::RestoreSummary, EngineError> {
    let scratch =
        tempfile::tempdir().map_err(|e| EngineError::io("create", Path::new("/tmp"), e))?;
    Ok(job.repo.restore_tree(job.snap, scratch.path(), true)?)
}

fn has_content(dir: &Path) -> Result<bool, EngineError> {
    Ok(fs::read_dir(dir)
        .map_err(|e| EngineError::io("read", dir, e))?
        .next()
        .is_some())
}

/// Restores the snapshot's volume into a staging directory inside `mountpoint`, then swaps
/// the content in entry by entry: the old entries moved aside into the staging directory
/// first, all put back if any move fails.
fn fill_volume(
    job: &RestoreJob<'_>,
    recorded: &Path,
    mountpoint: &Path,
) -> Result<lifeboat_repo::RestoreSummary, EngineError> {
    let suffix: u32 = rand::random();
    let staging = mountpoint.join(format!("{STAGING_PREFIX}{suffix:08x}"));
    let new = staging.join("new");
    let old = staging.join("old");
    fs::create_dir_all(&old).map_err(|e| EngineError::io("create", &old, e))?;
    let summary = match job.repo.restore_path(job.snap, recorded, &new) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e.into());
        }
    };
    let entries = |dir: &Path| -> Result<Vec<std::ffi::OsString>, EngineError> {
        let mut names = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| EngineError::io("read", dir, e))? {
            let name = e.map_err(|e| EngineError::io("read", dir, e))?.file_name();
            if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
                names.push(name);
            }
        }
        Ok(names)
    };
    let (current, restored) = match (entries(mountpoint), entries(&new)) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let _swapping = crate::interrupt::swapping();
    let mut moved_aside = Vec::new();
    let mut moved_in = Vec::new();
    let mut failure = None;
    for name in &current {
        let (from, to) = (mountpoint.join(name), old.join(name));
        if let Err(e) = fs::rename(&from, &to) {
            failure = Some(EngineError::io("move aside", &from, e));
            break;
        }
        moved_aside.push(name);
    }
    if failure.is_none() {
        for name in &restored {
            let (from, to) = (new.join(name), mountpoint.join(name));
            if let Err(e) = fs::rename(&from, &to) {
                failure = Some(EngineError::io("move into place", &to, e));
                break;
            }
            moved_in.push(name);
        }
    }
    if let Some(err) = failure {
        // The volume whole as it was, or the error says where its old content is.
        for name in moved_in.iter().rev() {
            let _ = fs::rename(mountpoint.join(name), new.join(name));
        }
        let mut stranded = Vec::new();
        for name in moved_aside.iter().rev() {
            if fs::rename(old.join(name), mountpoint.join(name)).is_err() {
                stranded.push(name.to_string_lossy().into_owned());
            }
        }
        if stranded.is_empty() {
            let _ = fs::remove_dir_all(&staging);
            return Err(err);
        }
        return Err(EngineError::usage(
            format!(
                "{err}; {} of the old entries could not be moved back",
                stranded.len()
            ),
            Some(&format!(
                "they are in {}: move them back by hand",
                old.display()
            )),
        ));
    }
    // Mode and times of the volume's root as recorded.
    if let Ok(meta) = fs::metadata(&new) {
        let _ = fs::set_permissions(mountpoint, meta.permissions());
    }
    fs::remove_dir_all(&staging).map_err(|e| EngineError::io("remove", &staging, e))?;
    Ok(summary)
}
