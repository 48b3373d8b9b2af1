//! Recovering a cluster to a point: a base backup extracted, the archived WAL after it
//! staged beside it, and PostgreSQL started once on it to replay up to the target and promote.
//!
//! The work happens in a directory of its own (`.lifeboat-recover-*`, beside the destination
//! for a restore so the final move is a rename); the destination appears only once the server
//! reached the target and stopped cleanly. The recovered cluster never archives: its settings
//! end with `archive_mode = 'off'`, so it cannot write into the asset's archive.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use jiff::Timestamp;
use lifeboat_core::{
    Manifest,
    wal::{Lsn, WalFile, segment_name, segment_of},
};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sandbox::PostgresSandbox;
use lifeboat_sources::postgres::{BASE_ARTIFACT, cluster_facts};

use super::archive::Archive;
use crate::EngineError;

/// Where recovery stops, resolved (times parsed in the plan's zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Replay everything archived.
    Latest,
    /// Only to the base backup's consistent point.
    Immediate,
    Time(Timestamp),
    Lsn(Lsn),
    Xid(String),
    Name(String),
}

impl Recovery {
    /// The `postgresql.conf` lines that stop recovery here.
    fn settings(&self) -> Vec<String> {
        let q = |v: &str| format!("'{}'", v.replace('\'', "''"));
        match self {
            Self::Latest => Vec::new(),
            Self::Immediate => vec!["recovery_target = 'immediate'".to_owned()],
            Self::Time(t) => vec![format!(
                "recovery_target_time = {}",
                q(&t.strftime("%Y-%m-%d %H:%M:%S%.f+00").to_string())
            )],
            Self::Lsn(l) => vec![format!("recovery_target_lsn = {}", q(&l.to_string()))],
            Self::Xid(x) => vec![format!("recovery_target_xid = {}", q(x))],
            Self::Name(n) => vec![format!("recovery_target_name = {}", q(n))],
        }
    }

    /// For reports: what was asked.
    pub fn label(&self) -> String {
        match self {
            Self::Latest => "the newest archived WAL".to_owned(),
            Self::Immediate => "the base backup's end".to_owned(),
            Self::Time(t) => format!("time {t}"),
            Self::Lsn(l) => format!("LSN {l}"),
            Self::Xid(x) => format!("transaction {x}"),
            Self::Name(n) => format!("restore point {n:?}"),
        }
    }
}

/// A base backup with what its manifest says.
pub(crate) struct Base {
    pub snap: SnapshotInfo,
    pub manifest: Manifest,
    pub start: Lsn,
    pub stop: Lsn,
    pub timeline: u32,
    pub major: u32,
    pub segment_size: u64,
}

impl Base {
    pub fn read(repo: &Repo, snap: &SnapshotInfo) -> Result<Self, EngineError> {
        let manifest = repo.read_manifest(snap)?;
        let fact = |k: &str| manifest.consistency.get(k).cloned().unwrap_or_default();
        let bad = |what: &str| {
            EngineError::usage(
                format!(
                    "snapshot {} is not a base backup Lifeboat can recover: its manifest has no {what}",
                    snap.short_id
                ),
                Some(
                    "pick a snapshot of the postgres-cluster asset (`lifeboat snapshots --asset NAME`)",
                ),
            )
        };
        Ok(Self {
            start: Lsn::parse(&fact(cluster_facts::START_LSN)).ok_or_else(|| bad("start LSN"))?,
            stop: Lsn::parse(&fact(cluster_facts::STOP_LSN)).ok_or_else(|| bad("stop LSN"))?,
            timeline: fact(cluster_facts::TIMELINE).parse().unwrap_or(1),
            major: fact(cluster_facts::MAJOR)
                .parse()
                .map_err(|_| bad("server version"))?,
            segment_size: fact(cluster_facts::SEGMENT_SIZE)
                .parse()
                .unwrap_or(lifeboat_core::wal::DEFAULT_SEGMENT_SIZE),
            snap: snap.clone(),
            manifest,
        })
    }

    /// The first WAL file recovery reads: the segment holding the start position.
    pub fn first_wal(&self) -> String {
        segment_name(
            self.timeline,
            segment_of(self.start, self.segment_size),
            self.segment_size,
        )
    }
}

/// Picks the base backup for `target` among the asset's snapshots: the newest that ended
/// before it (any for targets without a position or time).
pub(crate) fn pick_base(repo: &Repo, asset: &str, target: &Recovery) -> Result<Base, EngineError> {
    let mut snaps: Vec<SnapshotInfo> = repo
        .snapshots()?
        .into_iter()
        .filter(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
        .collect();
    snaps.sort_by_key(|s| std::cmp::Reverse(s.time));
    for snap in &snaps {
        let base = Base::read(repo, snap)?;
        let fits = match target {
            Recovery::Time(t) => base.manifest.finished_at <= *t,
            Recovery::Lsn(l) => base.stop <= *l,
            _ => true,
        };
        if fits {
            return Ok(base);
        }
    }
    Err(EngineError::usage(
        format!(
            "restore asset {asset}: no base backup ends before {}",
            target.label()
        ),
        Some(
            "`lifeboat wal status` shows the window a restore can reach; take base backups with `lifeboat backup`",
        ),
    ))
}

/// What a recovery found.
pub(crate) struct Recovered {
    pub sandbox: PostgresSandbox,
    /// The server's own line on where recovery stopped.
    pub stopped_at: String,
    /// The commit time of the last transaction replayed, when the server logged one.
    pub last_commit: Option<Timestamp>,
    pub bytes: u64,
    pub wal_files: usize,
    /// What a delta extraction wrote and reused.
    pub delta: Option<super::delta::Delta>,
}

/// The files of the archive recovery may read from `base` on, oldest first.
pub(crate) fn wal_needed(
    archive: &Archive<'_>,
    base: &Base,
) -> Result<std::collections::BTreeMap<String, (usize, Manifest)>, EngineError> {
    let mut files = archive.files_from(&base.first_wal())?;
    // Older timelines' segments after the start are not on this history; newer ones may be.
    files.retain(|name, _| match WalFile::parse(name, base.segment_size) {
        Some(WalFile::Segment { timeline, .. } | WalFile::Partial { timeline, .. }) => {
            timeline >= base.timeline
        }
        Some(WalFile::History { .. }) => true,
        _ => false,
    });
    Ok(files)
}

/// Extracts `base` into `work/data`, stages the archived WAL it needs in `work/wal`, and runs
/// PostgreSQL on it until recovery reached `target` and promoted. `role` is who the checks
/// connect as; `durable` whether the files must survive a crash (a restore) or not (a drill).
/// With `delta`, `work/data` already holds a copy of the cluster (it is a link to the
/// directory being restored), and only what differs from the base backup is written.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per mode; a struct adds nothing"
)]
pub(crate) fn recover(
    repo: &Repo,
    archive: &Archive<'_>,
    base: &Base,
    target: &Recovery,
    work: &Path,
    role: &str,
    durable: bool,
    delta: bool,
) -> Result<Recovered, EngineError> {
    let data = work.join("data");
    let (bytes, delta) = if delta {
        let d = super::delta::extract(repo, base, &data)?;
        (d.written + d.reused, Some(d))
    } else {
        (extract(repo, base, &data)?, None)
    };
    let staged = work.join("wal");
    fs::create_dir_all(&staged).map_err(|e| EngineError::io("create", &staged, e))?;
    let needed = if *target == Recovery::Immediate {
        Default::default()
    } else {
        wal_needed(archive, base)?
    };
    for (name, (batch, manifest)) in &needed {
        let path = staged.join(name);
        let mut f = fs::File::create(&path).map_err(|e| EngineError::io("create", &path, e))?;
        archive.write(*batch, manifest, name, &mut f)?;
    }
    let mut wal_files = needed.len();
    // A streamed cluster's newest segment, stored unfinished: replayed as the segment itself.
    if *target != Recovery::Immediate
        && let Some((batch, segment)) = archive.tail()?
        && segment.as_str() >= base.first_wal().as_str()
        && matches!(
            WalFile::parse(&segment, base.segment_size),
            Some(WalFile::Segment { timeline, .. }) if timeline >= base.timeline
        )
    {
        let path = staged.join(&segment);
        let mut f = fs::File::create(&path).map_err(|e| EngineError::io("create", &path, e))?;
        archive.write_tail(batch, &mut f)?;
        wal_files += 1;
    }
    write_settings(&data, &staged, target)?;
    if delta.is_some() {
        // The server's user owns what was written (the work directory's own files are
        // handed over by the sandbox; these sit behind the link).
        super::delta::hand_over(&data)
            .map_err(|e| EngineError::io("hand over to the directory's owner", &data, e))?;
    }
    let fail = |e: lifeboat_sandbox::SandboxError| {
        EngineError::usage(
            format!(
                "recover the base backup {}: {}",
                base.snap.short_id, e.reason
            ),
            Some(
                "the PostgreSQL server of the backup's version must be installed, and its user (postgres) must be able to reach the directory",
            ),
        )
    };
    let sandbox =
        PostgresSandbox::recover(work.to_path_buf(), base.major, role, durable).map_err(fail)?;
    sandbox
        .wait_promoted(Duration::from_secs(3600))
        .map_err(fail)?;
    let log = sandbox.server_log();
    // The most precise line the server wrote: where it stopped for the target, else the
    // last transaction it replayed, else where redo ended.
    let stopped_at = [
        "recovery stopping",
        "last completed transaction",
        "redo done at",
    ]
    .iter()
    .find_map(|key| {
        log.lines()
            .rev()
            .find_map(|l| l.find(key).map(|i| l[i..].trim().to_owned()))
    })
    .unwrap_or_else(|| "recovery ended".to_owned());
    let last_commit = log
        .lines()
        .rev()
        .find_map(|l| {
            l.split("last completed transaction was at log time ")
                .nth(1)
        })
        .and_then(|t| log_time(t.trim()));
    Ok(Recovered {
        sandbox,
        stopped_at,
        last_commit,
        bytes,
        wal_files,
        delta,
    })
}

/// A time as PostgreSQL logs it: `2026-12-06 01:58:58.147697+00`.
fn log_time(text: &str) -> Option<Timestamp> {
    let iso = text.replacen(' ', "T", 1);
    let iso = match iso.rfind(['+', '-']) {
        Some(i) if iso.len() - i == 3 => format!("{iso}:00"),
        _ => iso,
    };
    iso.parse().ok()
}

/// `base.tar` from the repository into `dest`, through a pipe: no copy of the tar on disk.
fn extract(repo: &Repo, base: &Base, dest: &Path) -> Result<u64, EngineError> {
    fs::create_dir_all(dest).map_err(|e| EngineError::io("create", dest, e))?;
    let (reader, mut writer) = std::io::pipe().map_err(|e| EngineError::io("pipe", dest, e))?;
    std::thread::scope(|s| {
        let feeding = s.spawn(move || {
            let n = repo.dump_artifact(&base.snap, &base.manifest, BASE_ARTIFACT, &mut writer);
            drop(writer);
            n
        });
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(false);
        let unpacked = archive.unpack(dest);
        // Whatever is left in the pipe is drained so the feeder ends.
        let mut rest = archive.into_inner();
        let _ = std::io::copy(&mut rest, &mut std::io::sink());
        let fed = feeding
            .join()
            .map_err(|_| EngineError::usage("reading the base backup stopped", None))?;
        let n = fed?;
        unpacked.map_err(|e| EngineError::io("extract the base backup into", dest, e))?;
        Ok(n)
    })
}

const BLOCK_START: &str = "# lifeboat restore: begin";
const BLOCK_END: &str = "# lifeboat restore: end";

/// `recovery.signal` and the recovery settings, appended to `postgresql.auto.conf` (read
/// last, so they win), and an empty `postgresql.conf` where the cluster keeps its
/// configuration elsewhere (Debian's /etc/postgresql).
fn write_settings(data: &Path, staged: &Path, target: &Recovery) -> Result<(), EngineError> {
    let conf = data.join("postgresql.conf");
    if !conf.exists() {
        fs::write(
            &conf,
            "# Written by lifeboat restore: the original cluster kept its configuration outside\n# its data directory. Copy your settings here before you run it for real.\n",
        )
        .map_err(|e| EngineError::io("write", &conf, e))?;
    }
    let signal = data.join("recovery.signal");
    fs::write(&signal, "").map_err(|e| EngineError::io("write", &signal, e))?;
    let staged = staged.display().to_string().replace('\'', "''");
    let mut lines = vec![
        BLOCK_START.to_owned(),
        format!("restore_command = 'cp \"{staged}/%f\" \"%p\"'"),
        "recovery_target_timeline = 'latest'".to_owned(),
        "recovery_target_action = 'promote'".to_owned(),
        "archive_mode = 'off'".to_owned(),
    ];
    lines.extend(target.settings());
    lines.push(BLOCK_END.to_owned());
    append_auto_conf(data, &lines)
}

/// Once recovered: the recovery settings go. A copy beside the original keeps
/// `archive_mode = 'off'` with the reason; a cluster that replaces the original (`in_place`)
/// archives as the original did, continuing its archive on the new timeline.
pub(crate) fn settle_settings(
    data: &Path,
    snapshot: &str,
    stopped_at: &str,
    in_place: bool,
) -> Result<(), EngineError> {
    let path = data.join("postgresql.auto.conf");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let kept: Vec<&str> = match text.find(BLOCK_START) {
        Some(i) => text[..i].lines().collect(),
        None => text.lines().collect(),
    };
    let mut out = kept.join("\n");
    out.push_str(&format!(
        "\n# Restored by Lifeboat from base backup {snapshot} ({stopped_at}).\n"
    ));
    if !in_place {
        out.push_str("# Archiving stays off so this copy never writes into the original's WAL archive; turn it\n# on (with an archive of its own) once it replaces the original.\narchive_mode = 'off'\n");
    }
    fs::write(&path, out).map_err(|e| EngineError::io("write", &path, e))
}

fn append_auto_conf(data: &Path, lines: &[String]) -> Result<(), EngineError> {
    let path = data.join("postgresql.auto.conf");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| EngineError::io("open", &path, e))?;
    let mut text = String::from("\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(|e| EngineError::io("write", &path, e))
}

/// A fresh work directory beside `dest` (same file system, so the end is a rename).
pub(crate) fn work_dir_beside(dest: &Path) -> Result<PathBuf, EngineError> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(parent).map_err(|e| EngineError::io("create", parent, e))?;
    let dir = tempfile::Builder::new()
        .prefix(".lifeboat-recover-")
        .tempdir_in(parent)
        .map_err(|e| EngineError::io("create a work directory in", parent, e))?;
    Ok(dir.keep())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_becomes_its_recovery_setting() {
        let t: Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        assert_eq!(
            Recovery::Time(t).settings(),
            ["recovery_target_time = '2026-12-05 10:00:00+00'"]
        );
        assert_eq!(
            Recovery::Lsn(Lsn::parse("0/3000060").unwrap()).settings(),
            ["recovery_target_lsn = '0/3000060'"]
        );
        assert_eq!(
            Recovery::Name("before 'migration'".into()).settings(),
            ["recovery_target_name = 'before ''migration'''"]
        );
        assert!(Recovery::Latest.settings().is_empty());
    }

    #[test]
    fn log_times_read_as_postgres_writes_them() {
        let t = log_time("2026-12-06 01:58:58.147697+00").unwrap();
        assert_eq!(t.to_string(), "2026-12-06T01:58:58.147697Z");
        let t = log_time("2026-12-06 03:58:58+02").unwrap();
        assert_eq!(t.to_string(), "2026-12-06T01:58:58Z");
        assert_eq!(log_time("yesterday"), None);
    }

    #[test]
    fn settling_drops_the_recovery_block_and_keeps_archiving_off() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("postgresql.auto.conf"),
            "archive_mode = 'on'\narchive_command = 'x'\n",
        )
        .unwrap();
        write_settings(dir.path(), Path::new("/tmp/w"), &Recovery::Latest).unwrap();
        let during = fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert!(
            during.contains("restore_command = 'cp \"/tmp/w/%f\" \"%p\"'"),
            "{during}"
        );
        let conf = dir.path().join("postgresql.auto.conf");
        settle_settings(dir.path(), "abcd1234", "redo done", false).unwrap();
        let after = fs::read_to_string(&conf).unwrap();
        assert!(!after.contains("restore_command"), "{after}");
        assert!(
            after.starts_with("archive_mode = 'on'\narchive_command = 'x'\n"),
            "{after}"
        );
        assert!(
            after.trim_end().ends_with("archive_mode = 'off'"),
            "{after}"
        );
        // In place, the original's archiving goes on.
        fs::write(&conf, &during).unwrap();
        settle_settings(dir.path(), "abcd1234", "redo done", true).unwrap();
        let after = fs::read_to_string(&conf).unwrap();
        assert!(
            !after.contains("restore_command") && !after.contains("'off'"),
            "{after}"
        );
    }
}
