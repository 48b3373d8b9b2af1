//! `command` assets: whatever a backup command writes to stdout is the artifact; a restore
//! command reads it back on stdin.

use std::{fs, path::Path};

use lifeboat_core::Manifest;
use lifeboat_plan::{CommandSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::{Source, SourceError, command::CommandSource};

use super::{
    contract::{Description, Kind, Lint},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, shell_checks},
};

pub(super) struct Command<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a CommandSpec,
}

impl Command<'_> {
    fn command_source(&self) -> CommandSource {
        CommandSource {
            asset: self.asset.name.clone(),
            backup: self.spec.backup.clone(),
            restore: self.spec.restore.clone(),
            filename: self.spec.filename.clone(),
            workdir: self.spec.workdir.clone(),
        }
    }
}

impl Kind for Command<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(self.command_source()))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        let asset = self.asset;
        let (repo, snap, req) = (job.repo, job.snap, job.req);
        let (manifest, artifact) = job.streamed()?;
        if let Some(dest) = &req.to {
            job.plan(RestoreAction::WriteArtifact {
                artifact: artifact.clone(),
                dest: dest.clone(),
            });
            if !req.dry_run {
                job.report.bytes =
                    write_artifact_file(repo, snap, &manifest, &artifact, dest, req.yes)?;
            }
            return Ok(());
        }
        let source = self.command_source();
        if source.restore.is_none() {
            return Err(EngineError::usage(
                format!("asset {} has no restore command", asset.name),
                Some(&format!(
                    "add `restore = \"...\"` to [assets.{}], or use --to PATH to write the artifact to a file",
                    asset.name
                )),
            ));
        }
        if !req.skip_safety_snapshot {
            job.plan_safety_copy();
        }
        job.plan(RestoreAction::RunRestoreCommand {
            artifact: artifact.clone(),
        });
        if req.dry_run {
            return Ok(());
        }
        // Read and check the whole artifact before the command sees a byte of it.
        repo.verify_artifact(snap, &manifest, &artifact)?;
        if !req.skip_safety_snapshot {
            // A service's export has no raw form: a backup command that fails stops the
            // restore.
            let id = job.keeper.safety_snapshot(asset).map_err(|e| {
                EngineError::usage(
                    format!("take safety snapshot of asset {}: {e}", asset.name),
                    Some(
                        "fix the backup command, or pass --skip-safety-snapshot to restore without one",
                    ),
                )
            })?;
            job.report.safety_snapshot = Some(id);
        }
        job.report.bytes = source.restore(|w| repo.dump_artifact(snap, &manifest, &artifact, w))?;
        Ok(())
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let mut found = Found {
            bytes: job.fetch()?,
            ..Found::default()
        };
        let artifact = job.only_artifact()?;
        found.compared = Some(format!(
            "{} artifact(s), SHA-256 as recorded",
            job.manifest.artifacts.len()
        ));
        found.checks = shell_checks(
            &self.asset.checks,
            job.work,
            &[("LIFEBOAT_ARTIFACT", artifact.display().to_string())],
        );
        job.verified();
        Ok(found)
    }

    fn inspect_live(
        &self,
        _manifest: Option<&Manifest>,
        _base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let (asset, spec) = (self.asset, self.spec);
        let fail = |e: String| EngineError::usage(format!("check asset {}: {e}", asset.name), None);
        let mut out = LiveCheck::default();
        // What the backup command gives now: the live service's own export, checked as a
        // drill checks the stored one.
        let work = tempfile::Builder::new()
            .prefix(".lifeboat-check-")
            .tempdir_in(lifeboat_core::spool_dir())
            .map_err(|e| fail(format!("create a work directory: {e}")))?;
        let artifact = work.path().join(&spec.filename);
        let file =
            fs::File::create(&artifact).map_err(|e| EngineError::io("create", &artifact, e))?;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&spec.backup)
            .current_dir(&spec.workdir)
            .stdout(file);
        let status = cmd
            .status()
            .map_err(|e| fail(format!("run the backup command: {e}")))?;
        if status.success() {
            let size = fs::metadata(&artifact).map_or(0, |m| m.len());
            out.compared = Some(format!("the backup command gave {size} bytes"));
        } else {
            out.difference = Some(format!("the backup command failed ({status})"));
        }
        out.checks = shell_checks(
            &asset.checks,
            work.path(),
            &[("LIFEBOAT_ARTIFACT", artifact.display().to_string())],
        );
        Ok(out)
    }

    fn lint_restore_step(&self, to: bool, _tables: bool) -> Option<Lint> {
        let asset = &self.asset.name;
        (self.spec.restore.is_none() && !to).then(|| Lint {
            message: format!("restores {asset}, which has no restore command"),
            hint: format!(
                "add restore = \"...\" to [assets.{asset}], or give the step to = \"/some/file\""
            ),
        })
    }

    fn describe(&self) -> Description {
        Description {
            location: format!("`{}`", self.spec.backup),
            secrets: Vec::new(),
            by_hand: match &self.spec.restore {
                Some(cmd) => format!(
                    "feed DIR/{}/data/{} to the restore command: {cmd} < DIR/{}/data/{}",
                    self.asset.name, self.spec.filename, self.asset.name, self.spec.filename
                ),
                None => format!(
                    "DIR/{}/data/{} is what `{}` printed; load it with the service's own tool",
                    self.asset.name, self.spec.filename, self.spec.backup
                ),
            },
        }
    }
}

/// Writes an artifact to `dest` through a temporary file, renamed into place only once its
/// checksum matched.
fn write_artifact_file(
    repo: &Repo,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    artifact: &str,
    dest: &Path,
    overwrite: bool,
) -> Result<u64, EngineError> {
    if dest.exists() && !overwrite {
        return Err(EngineError::usage(
            format!("write {}: the file exists", dest.display()),
            Some("add --yes to replace it, or choose another path"),
        ));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
    super::write_atomically(dest, |w| {
        Ok(repo.dump_artifact(snap, manifest, artifact, w)?)
    })
}
