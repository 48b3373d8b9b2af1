//! `files` assets: paths backed up as a tree, restored beside themselves and swapped in by
//! rename. The tree restore also puts back the raw copy of any kind's damaged target.

use std::{
    fs,
    path::{Path, PathBuf},
};

use lifeboat_core::Manifest;
use lifeboat_plan::{AssetSpec, FilesSpec, Redact, ResolvedAsset};
use lifeboat_repo::{Repo, RestoreSummary, SnapshotInfo};
use lifeboat_sources::{Source, SourceError, files::FilesSource};

use super::{
    contract::{Description, Kind, Lint},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, shell_checks},
};

pub(super) struct Files<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a FilesSpec,
}

impl Kind for Files<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(FilesSource {
            asset: self.asset.name.clone(),
            paths: self.spec.paths.clone(),
            exclude: self.spec.exclude.clone(),
            one_file_system: self.spec.one_file_system,
            redact_values: self.spec.redact == Redact::Values,
        }))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        restore_tree(job, Some(self.spec))
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        sandbox_tree(self.asset, job)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let mut out = live_tree(&self.spec.paths, manifest);
        let paths: Vec<String> = self
            .spec
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        out.checks = shell_checks(
            &self.asset.checks,
            base,
            &[("LIFEBOAT_PATHS", paths.join(":"))],
        );
        Ok(out)
    }

    fn lint_restore_step(&self, to: bool, _tables: bool) -> Option<Lint> {
        (self.spec.redact == Redact::Values && !to).then(|| Lint {
            message: format!(
                "restores {} over its live files, but its snapshots hold keys without values (redact = \"values\"): the secrets would be blanked",
                self.asset.name
            ),
            hint: "restore it with to = \"/some/dir\" and fill in the values, or use a confirm step"
                .to_owned(),
        })
    }

    fn describe(&self) -> Description {
        let paths: Vec<String> = self
            .spec
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Description {
            location: paths.join(", "),
            secrets: Vec::new(),
            by_hand: format!(
                "the files are under DIR/{}/files/ at their original paths: copy them back",
                self.asset.name
            ),
        }
    }
}

/// Restores a tree snapshot into the sandbox, compares its files and bytes with the manifest
/// and runs the asset's shell checks there.
pub(super) fn sandbox_tree(
    asset: &ResolvedAsset,
    job: &mut SandboxJob<'_>,
) -> Result<Found, String> {
    let mut found = Found::default();
    let dest = job.work.join("restored");
    let summary = job
        .repo
        .restore_tree(job.snap, &dest, false)
        .map_err(|e| e.to_string())?;
    job.loaded();
    found.bytes = summary.bytes;
    if let Some(f) = &job.manifest.files {
        if summary.files != f.files || summary.bytes != f.bytes {
            return Err(format!(
                "restored {} files, {} bytes; the manifest says {} files, {} bytes",
                summary.files, summary.bytes, f.files, f.bytes
            ));
        }
        found.compared = Some(format!("{} files, {} bytes as recorded", f.files, f.bytes));
    }
    found.checks = shell_checks(
        &asset.checks,
        &dest,
        &[("LIFEBOAT_RESTORE_DIR", dest.display().to_string())],
    );
    job.verified();
    Ok(found)
}

/// A snapshot laid out as a tree: a files asset's, or the raw copy of a damaged target.
/// `--to DIR` writes it into an empty directory; in place, each original path is staged
/// beside itself and swapped in once all are staged, after a safety copy of what is there.
///
/// `spec` is the files asset's own (its safety copy is the asset narrowed to the paths that
/// exist); `None` for a raw copy of another kind's target (its safety copy is that kind's,
/// with the paths as raw files should it be damaged).
pub(super) fn restore_tree(
    job: &mut RestoreJob<'_>,
    spec: Option<&FilesSpec>,
) -> Result<(), EngineError> {
    let (repo, snap, asset, req) = (job.repo, job.snap, job.asset, job.req);
    if let Some(dest) = &req.to {
        ensure_empty_dir(dest)?;
        job.plan(RestoreAction::WriteTree { dest: dest.clone() });
        let summary = repo.restore_tree(snap, dest, req.dry_run)?;
        job.report.bytes = summary.bytes;
        job.report.files = Some(summary);
        return Ok(());
    }
    let manifest = job.manifest.take().ok_or_else(|| {
        EngineError::usage(
            format!("snapshot {} was not written by Lifeboat", snap.short_id),
            Some("restore it with --to PATH"),
        )
    })?;
    let paths = lifeboat_repo::original_paths(&manifest);
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .cloned()
        .collect();
    let safety = !req.skip_safety_snapshot && !existing.is_empty();
    if safety {
        job.plan_safety_copy();
    }
    for p in &paths {
        job.plan(RestoreAction::ReplacePath { path: p.clone() });
    }
    if req.dry_run {
        let staging = tempdir_near(&std::env::temp_dir(), &asset.name)?;
        let summary = repo.restore_tree(snap, &staging, true);
        let _ = fs::remove_dir_all(&staging);
        let summary = summary?;
        job.report.bytes = summary.bytes;
        job.report.files = Some(summary);
        return Ok(());
    }
    if safety {
        match spec {
            // The paths as they are now, whatever can be read of them.
            Some(spec) => {
                let now = ResolvedAsset {
                    spec: AssetSpec::Files(FilesSpec {
                        paths: existing,
                        ..spec.clone()
                    }),
                    ..asset.clone()
                };
                job.safety_copy_of(&now, &[], None)?;
            }
            // Putting a raw copy back: the asset as it is now, consistently if it can be
            // read, else raw as well.
            None => {
                job.safety_copy(&existing, None)?;
            }
        }
    }
    let summary = restore_files_in_place(repo, snap, &asset.name, &paths)?;
    job.report.bytes = summary.bytes;
    job.report.files = Some(summary);
    Ok(())
}

pub(super) fn ensure_empty_dir(dest: &Path) -> Result<(), EngineError> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(EngineError::usage(
                    format!(
                        "restore into {}: the directory is not empty",
                        dest.display()
                    ),
                    Some("choose a new or empty directory"),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("read", dest, e)),
    }
}

/// A new directory next to `near` (same filesystem, so a rename into place is atomic).
fn tempdir_near(dir: &Path, asset: &str) -> Result<PathBuf, EngineError> {
    let suffix: u32 = rand::random();
    let path = dir.join(format!(".lifeboat-restore-{asset}-{suffix:08x}"));
    fs::create_dir_all(&path).map_err(|e| EngineError::io("create", &path, e))?;
    Ok(path)
}

/// Restores each original path beside itself, then swaps it in by rename; the old content is
/// removed only once the new one is in place (it is in the safety snapshot).
fn restore_files_in_place(
    repo: &Repo,
    snap: &SnapshotInfo,
    asset: &str,
    paths: &[PathBuf],
) -> Result<RestoreSummary, EngineError> {
    // Stage everything first: nothing is touched until every path has been restored.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut total = RestoreSummary::default();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (dir, _) in staged {
            let _ = fs::remove_dir_all(dir);
        }
    };
    for path in paths {
        let parent = path.parent().unwrap_or_else(|| Path::new("/"));
        let result = fs::create_dir_all(parent)
            .map_err(|e| EngineError::io("create", parent, e))
            .and_then(|()| tempdir_near(parent, asset));
        let staging = match result {
            Ok(s) => s,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let restored = staging.join("new");
        match repo.restore_path(snap, path, &restored) {
            Ok(s) => {
                total.files += s.files;
                total.dirs += s.dirs;
                total.bytes += s.bytes;
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                cleanup(&staged);
                return Err(e.into());
            }
        }
        staged.push((staging, restored));
    }
    let _swapping = crate::interrupt::swapping();
    let mut swapped: Vec<(&Path, Option<PathBuf>)> = Vec::new();
    let mut failure = None;
    for ((staging, restored), target) in staged.iter().zip(paths) {
        let old = staging.join(".old");
        let had_old = target.exists() || target.is_symlink();
        if had_old && let Err(e) = fs::rename(target, &old) {
            failure = Some(EngineError::io("move aside", target, e));
            break;
        }
        if let Err(e) = fs::rename(restored, target) {
            if had_old {
                let _ = fs::rename(&old, target);
            }
            failure = Some(EngineError::io("move into place", target, e));
            break;
        }
        swapped.push((target, had_old.then_some(old)));
    }
    if let Some(err) = failure {
        // Put back the paths already swapped: an asset is restored whole or not at all.
        for (target, old) in swapped.iter().rev() {
            let _ = remove_path(target);
            if let Some(old) = old {
                let _ = fs::rename(old, target);
            }
        }
        cleanup(&staged);
        return Err(err);
    }
    cleanup(&staged);
    Ok(total)
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// The files and bytes under `paths` now, compared with what `manifest` recorded.
pub(super) fn live_tree(paths: &[PathBuf], manifest: Option<&Manifest>) -> LiveCheck {
    let mut out = LiveCheck::default();
    let (files, bytes) = count_files(paths);
    if let Some(f) = manifest.and_then(|m| m.files.as_ref()) {
        if files == f.files && bytes == f.bytes {
            out.compared = Some(format!("{} files, {} bytes as recorded", f.files, f.bytes));
        } else {
            out.difference = Some(format!(
                "{files} files, {bytes} bytes live; the snapshot has {} files, {} bytes",
                f.files, f.bytes
            ));
        }
    }
    out
}

/// Regular files and their bytes under `paths` (symlinks not followed).
fn count_files(paths: &[std::path::PathBuf]) -> (u64, u64) {
    fn walk(p: &Path, acc: &mut (u64, u64)) {
        let Ok(meta) = fs::symlink_metadata(p) else {
            return;
        };
        if meta.is_file() {
            acc.0 += 1;
            acc.1 += meta.len();
        } else if meta.is_dir()
            && let Ok(entries) = fs::read_dir(p)
        {
            for e in entries.flatten() {
                walk(&e.path(), acc);
            }
        }
    }
    let mut acc = (0, 0);
    for p in paths {
        walk(p, &mut acc);
    }
    acc
}
