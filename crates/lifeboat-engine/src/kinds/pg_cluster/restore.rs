//! A cluster's restore: into a new data directory (`--to DIR`), or over the live cluster's
//! own `data-dir` (`--yes`).
//!
//! Both recover beside the destination first (`recovery.rs`); nothing of the destination is
//! touched until the recovered cluster reached its target and stopped cleanly. The exception
//! is a delta restore (`--to DIR --delta`, never in place), which recovers in `DIR` itself,
//! writing only what differs from the base backup (`delta.rs`). In place, the
//! safety copy is taken next (a base backup of the live cluster, or, when it cannot be read,
//! the record that it was damaged), then the live server is stopped with `pg_ctl`, its data
//! directory renamed aside (`<data-dir>.lifeboat-old-<time>`), the recovered one renamed in,
//! and the server started. Should it not start, the old directory goes back and is started
//! again: the live target is never left half-replaced.

use std::{
    fs,
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{
    Cluster, Recovery,
    archive::Archive,
    recovery::{self, Base},
};
use crate::{EngineError, actions::RestoreAction, kinds::RestoreJob};

pub(super) fn restore(kind: &Cluster<'_>, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
    let asset = kind.asset;
    let (dest, in_place) = match (&job.req.to, &kind.spec.data_dir) {
        (Some(to), _) => (to.clone(), false),
        (None, Some(dir)) => (dir.clone(), true),
        (None, None) => {
            return Err(EngineError::usage(
                format!(
                    "restore asset {} in place: the plan does not say where its data directory is",
                    asset.name
                ),
                Some(&format!(
                    "add data-dir = \"/var/lib/postgresql/15/main\" to [assets.{}], or restore into a new directory with --to DIR",
                    asset.name
                )),
            ));
        }
    };
    if job.req.delta && in_place {
        return Err(EngineError::usage(
            format!(
                "restore asset {} --delta: a delta restore writes into the directory it restores, and the live data-dir stays whole until the recovered cluster is swapped in",
                asset.name
            ),
            Some(
                "restore in place without --delta, or give --to DIR with an older copy of the cluster",
            ),
        ));
    }
    // A delta restore reuses a data directory; an empty or new one is simply filled.
    let delta = job.req.delta && dest.join("PG_VERSION").is_file();
    if !in_place && !delta && fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(EngineError::usage(
            format!(
                "restore asset {} --to {}: the directory is not empty{}",
                asset.name,
                dest.display(),
                if job.req.delta {
                    " and holds no PostgreSQL data directory to reuse"
                } else {
                    ""
                }
            ),
            Some(
                "give a new or empty directory (nothing there is overwritten), or --delta with one holding an older copy of the cluster",
            ),
        ));
    }
    let repo = job.repo;
    let target = job
        .recovery
        .clone()
        .unwrap_or(if job.req.snapshot.is_some() {
            Recovery::Immediate
        } else {
            Recovery::Latest
        });
    let base = if job.req.snapshot.is_some() || job.req.before.is_some() {
        Base::read(repo, job.snap)?
    } else {
        recovery::pick_base(repo, &asset.name, &target)?
    };
    let archive = Archive::load(repo, &asset.name)?;
    let wal_files = if target == Recovery::Immediate {
        0
    } else {
        recovery::wal_needed(&archive, &base)?.len()
    };
    job.report.snapshot.clone_from(&base.snap.id);
    job.report.snapshot_time = base.snap.time;
    let safety = in_place && !job.req.skip_safety_snapshot;
    if safety {
        job.plan_safety_copy();
    }
    if delta && dest.join("postmaster.pid").exists() {
        let owner = fs::metadata(&dest).map(|m| (m.uid(), m.gid())).ok();
        if pg_ctl_code(base.major, &dest, owner, &["status"]) != Some(NOT_RUNNING) {
            return Err(EngineError::usage(
                format!(
                    "restore asset {} --to {} --delta: a server runs on that directory",
                    asset.name,
                    dest.display()
                ),
                Some("stop it first (pg_ctl -D DIR stop); nothing was changed"),
            ));
        }
    }
    job.plan(RestoreAction::RecoverCluster {
        base: base.snap.id.clone(),
        target: target.label(),
        wal_files,
        dest: dest.clone(),
        delta,
    });
    if in_place {
        job.plan(RestoreAction::ReplacePath { path: dest.clone() });
    }
    if job.req.dry_run {
        return Ok(());
    }

    let work = recovery::work_dir_beside(&dest)?;
    let data = work.join("data");
    if delta {
        // The recovery runs on the directory itself, through a link in the work directory.
        let abs = std::path::absolute(&dest).map_err(|e| EngineError::io("find", &dest, e))?;
        std::os::unix::fs::symlink(&abs, &data).map_err(|e| EngineError::io("link", &data, e))?;
    }
    let result = (|| {
        let mut done = recovery::recover(
            repo,
            &archive,
            &base,
            &target,
            &work,
            &kind.role(),
            true,
            delta,
        )?;
        done.sandbox.shut_down().map_err(|e| {
            EngineError::usage(format!("stop the recovered cluster: {}", e.reason), None)
        })?;
        recovery::settle_settings(&data, &base.snap.short_id, &done.stopped_at, in_place)?;
        let _ = fs::remove_dir_all(work.join("wal"));
        job.report.bytes = done.bytes;
        job.report.recovered_to = Some(done.stopped_at);
        job.report.delta = done.delta.map(|d| crate::actions::DeltaSummary {
            written_bytes: d.written,
            reused_bytes: d.reused,
            removed_files: d.removed,
        });
        if in_place {
            let kept = kept_path(&dest);
            if safety {
                job.safety_copy(
                    &[],
                    Some(format!(
                        "the old data directory, kept at {}",
                        kept.display()
                    )),
                )?;
            }
            let had_one = dest.exists();
            swap_in(&data, &dest, &kept, base.major)?;
            job.report.kept = had_one.then_some(kept);
        } else if delta {
            fs::remove_file(&data).map_err(|e| EngineError::io("unlink", &data, e))?;
        } else {
            if dest.exists() {
                fs::remove_dir(&dest).map_err(|e| EngineError::io("replace", &dest, e))?;
            }
            fs::rename(&data, &dest).map_err(|e| EngineError::io("move into", &dest, e))?;
        }
        sync_parent(&dest);
        Ok(())
    })();
    // A delta restore that failed has changed the directory: say so, and how to go on.
    let result = result.map_err(|e| {
        if delta {
            EngineError::usage(
                format!(
                    "{e}; {} now holds a partly restored cluster",
                    dest.display()
                ),
                Some("run the same restore with --delta again (it writes only what still differs), or restore into a new directory"),
            )
        } else {
            e
        }
    });
    // The work directory goes in every case: the sandbox removed it when recovery failed,
    // and it holds nothing once the data moved.
    let _ = fs::remove_dir_all(&work);
    result
}

/// Where the live data directory is kept: beside it, named by the time.
fn kept_path(dir: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.lifeboat-old-{stamp}"))
}

/// Stops the live server, renames its directory to `kept` and `data` into its place, and
/// starts it; puts the old directory back (and starts it) when the new one does not start.
fn swap_in(data: &Path, live: &Path, kept: &Path, major: u32) -> Result<(), EngineError> {
    let fail = |what: &str, why: String| {
        EngineError::usage(
            format!("{what} the cluster in {}: {why}", live.display()),
            Some("the live data directory is as it was; see the server's log beside it"),
        )
    };
    let owner = fs::metadata(live)
        .or_else(|_| fs::metadata(live.parent().unwrap_or(live)))
        .map(|m| (m.uid(), m.gid()))
        .ok();
    if live.join("postmaster.pid").exists()
        && let Err(why) = pg_ctl(
            major,
            live,
            owner,
            &["-m", "fast", "-w", "-t", "300", "stop"],
        )
        && pg_ctl_code(major, live, owner, &["status"]) != Some(NOT_RUNNING)
    {
        // A server that runs and does not stop: nothing is touched. One that is gone (a
        // crash left its postmaster.pid behind) is what a damaged cluster looks like.
        return Err(fail("stop", why));
    }
    if live.exists() {
        fs::rename(live, kept).map_err(|e| EngineError::io("keep aside", live, e))?;
    }
    if let Err(e) = fs::rename(data, live) {
        let _ = fs::rename(kept, live);
        return Err(EngineError::io("move into", live, e));
    }
    let log = live.with_file_name(format!(
        "{}.lifeboat-start.log",
        live.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let log_arg = log.display().to_string();
    let start = ["-w", "-t", "600", "-l", log_arg.as_str(), "start"];
    if let Err(why) = pg_ctl(major, live, owner, &start) {
        // Back to what was there: the restored directory goes, the old one returns.
        let _ = pg_ctl(major, live, owner, &["-m", "immediate", "-w", "stop"]);
        let failed = live.with_file_name(format!(
            "{}.lifeboat-failed",
            live.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let _ = fs::remove_dir_all(&failed);
        let _ = fs::rename(live, &failed);
        if fs::rename(kept, live).is_ok() {
            let _ = pg_ctl(major, live, owner, &start);
        }
        return Err(fail("start the restored", why));
    }
    Ok(())
}

/// `pg_ctl status`'s exit code when no server runs on the directory.
const NOT_RUNNING: i32 = 3;

/// The exit code of `pg_ctl -D DIR ARGS`; `None` when it could not run or was killed.
fn pg_ctl_code(major: u32, dir: &Path, owner: Option<(u32, u32)>, args: &[&str]) -> Option<i32> {
    pg_ctl_output(major, dir, owner, args)
        .ok()
        .and_then(|out| out.status.code())
}

/// `pg_ctl -D DIR ARGS`, failing with its message unless it exits 0.
fn pg_ctl(major: u32, dir: &Path, owner: Option<(u32, u32)>, args: &[&str]) -> Result<(), String> {
    let out = pg_ctl_output(major, dir, owner, args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pg_ctl {} exited with {}: {}",
            args.last().unwrap_or(&""),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `pg_ctl -D DIR ARGS` of the cluster's version, as the directory's owner when run as
/// root.
fn pg_ctl_output(
    major: u32,
    dir: &Path,
    owner: Option<(u32, u32)>,
    args: &[&str],
) -> Result<std::process::Output, String> {
    let bin = lifeboat_sandbox::postgres_versions()
        .into_iter()
        .find(|(v, _)| *v == major)
        .map(|(_, bin)| bin.join("pg_ctl"))
        .ok_or_else(|| {
            format!("pg_ctl of PostgreSQL {major} is not installed (hint: apt-get install postgresql-{major})")
        })?;
    let mut cmd = Command::new(bin);
    cmd.arg("-D").arg(dir).args(args).stdin(Stdio::null());
    if let Some((uid, gid)) = owner
        && nix::unistd::geteuid().is_root()
        && uid != 0
    {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().map_err(|e| format!("run pg_ctl: {e}"))
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
}
