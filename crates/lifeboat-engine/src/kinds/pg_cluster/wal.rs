//! `lifeboat wal push|fetch|status|setup`: PostgreSQL's `archive_command` and
//! `restore_command`, and what an operator asks of the archive.
//!
//! A push stores the segment PostgreSQL asks for together with the segments it has already
//! marked ready (`pg_wal/archive_status/*.ready`), in one batch; it returns only once the
//! batch's snapshot is written, and records what it stored in a ledger beside the plan
//! (`.lifeboat/wal/<asset>.<repository>.pushed`, see `ledger.rs`), so that
//! PostgreSQL's later calls for those segments return at once. The ledger is only a shortcut,
//! trusted for an hour (look-ahead pays off within minutes): past that, or without it, a push
//! finds a segment already stored by reading the archive, so a repository replaced under the
//! same location is filled again. A segment whose bytes differ from the stored ones under the
//! same name is refused.

use std::{
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
    time::SystemTime,
};

use jiff::Timestamp;
use lifeboat_core::{
    ArtifactData, AssetKind, BackupInput, Payload, SourceFacts, StreamArtifact,
    wal::{Lsn, WalFile, segment_end, segment_name},
};
use lifeboat_plan::{AssetSpec, ResolvedAsset};
use lifeboat_repo::LockKind;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    archive::{Archive, batch_reason, gaps, wal_asset},
    ledger::Ledger,
};
use crate::{EngineError, engine::Engine, kinds::write_atomically};

/// At most this many files in one push.
const BATCH_FILES: usize = 64;
/// Files fetched ahead of the one asked for.
const READ_AHEAD: usize = 8;
/// Pushes left as they are by compaction: the newest ones, which fetches look at first.
const KEEP_RECENT: usize = 8;
/// PostgreSQL's smallest segment size: a name valid for any size is valid for this one.
const SMALLEST_SEGMENT: u64 = 1 << 20;
/// A push compacts the archive when it holds more batches than this.
const COMPACT_ABOVE: usize = 32;

/// What `wal compact` did.
#[derive(Debug, Serialize)]
pub struct Compacted {
    pub asset: String,
    /// Batches before and after.
    pub before: usize,
    pub after: usize,
}

/// Which batches fold together: all but the newest [`KEEP_RECENT`], by UTC hour for the last
/// day and by UTC day before that. Returns groups of indexes (oldest first) with more than
/// one member.
fn fold_groups(times: &[Timestamp], now: Timestamp) -> Vec<Vec<usize>> {
    let mut groups: std::collections::BTreeMap<(u8, i64), Vec<usize>> = Default::default();
    let foldable = times.len().saturating_sub(KEEP_RECENT);
    for (i, t) in times.iter().enumerate().take(foldable) {
        let secs = t.as_second();
        let key = if now.as_second() - secs < 86_400 {
            (1, secs.div_euclid(3600))
        } else {
            (0, secs.div_euclid(86_400))
        };
        groups.entry(key).or_default().push(i);
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

/// What a push did.
#[derive(Debug, Serialize)]
pub struct PushOutcome {
    /// The file PostgreSQL asked for.
    pub name: String,
    /// Files stored by this push (the asked one first when it was new).
    pub stored: Vec<String>,
    /// The batch's snapshot, when one was written.
    pub snapshot: Option<String>,
}

/// `wal status`.
#[derive(Debug, Clone, Serialize)]
pub struct WalStatus {
    pub asset: String,
    /// Batches (snapshots) in the archive.
    pub batches: usize,
    /// Files in the archive.
    pub files: usize,
    /// The newest segment stored, and the position just past it.
    pub newest_segment: Option<String>,
    pub archived_to: Option<String>,
    /// A streamed cluster's newest segment, stored unfinished, and the position it reaches.
    pub unfinished: Option<(String, String)>,
    /// When the newest batch was written.
    pub newest_push: Option<Timestamp>,
    /// Segments PostgreSQL has marked ready and no push stored yet (`data-dir` only).
    pub backlog: Option<usize>,
    /// Seconds between a segment's last write and its push, for the newest push.
    pub push_latency_secs: Option<f64>,
    /// The earliest point a restore reaches (the oldest base backup's end) and the latest.
    pub window: Option<(Timestamp, Timestamp)>,
    /// Base backups in the repository.
    pub base_backups: usize,
    /// Missing segments after the oldest base backup: first and last of each run.
    pub gaps: Vec<(String, String)>,
}

fn usage(message: String, hint: &str) -> EngineError {
    EngineError::usage(message, Some(hint))
}

impl Engine {
    /// The plan's `postgres-cluster` asset named `name`.
    pub(crate) fn cluster_asset(&self, name: &str) -> Result<&ResolvedAsset, EngineError> {
        let asset = self.asset(name)?;
        match asset.spec {
            AssetSpec::PostgresCluster(_) => Ok(asset),
            _ => Err(usage(
                format!(
                    "asset {name} is a {} asset, not a postgres-cluster",
                    asset.kind()
                ),
                "WAL archiving is for assets of type = \"postgres-cluster\"",
            )),
        }
    }

    /// The plan's `postgres-cluster` assets, in plan order.
    #[must_use]
    pub fn cluster_assets(&self) -> Vec<String> {
        self.plan()
            .assets
            .iter()
            .filter(|a| matches!(a.spec, AssetSpec::PostgresCluster(_)))
            .map(|a| a.name.clone())
            .collect()
    }

    pub(super) fn wal_state(&self, asset: &str, what: &str) -> PathBuf {
        self.plan()
            .base_dir
            .join(".lifeboat")
            .join("wal")
            .join(format!("{asset}.{what}"))
    }

    /// The push ledger of `asset` for the primary repository's location.
    pub(super) fn ledger_path(&self, asset: &str) -> PathBuf {
        let location = self.primary().location.to_string();
        let tag = hex::encode(&Sha256::digest(location.as_bytes())[..4]);
        self.wal_state(asset, &format!("{tag}.pushed"))
    }

    /// `archive_command`: stores the WAL file at `path` (and the segments already marked
    /// ready beside it) in the primary repository; returns once they are durably there.
    ///
    /// # Errors
    /// The file is not a WAL file, the repository cannot be written, or a different file is
    /// already stored under the same name.
    pub fn wal_push(&self, asset: &str, path: &Path) -> Result<PushOutcome, EngineError> {
        let asset = self.cluster_asset(asset)?;
        let name = file_name(path)?;
        let ledger_path = self.ledger_path(&asset.name);
        let ledger = Ledger::read(&ledger_path).recent(Timestamp::now());
        let sha = sha256_file(path)?;
        if let Some(stored) = ledger.sha(&name) {
            return if stored == sha {
                Ok(PushOutcome {
                    name,
                    stored: Vec::new(),
                    snapshot: None,
                })
            } else {
                Err(self.conflict(&asset.name, &name))
            };
        }
        // The asked file first, then what PostgreSQL already marked ready, oldest first.
        let mut batch: Vec<(String, PathBuf, String)> =
            vec![(name.clone(), path.to_path_buf(), sha)];
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        for ready in ready_files(dir) {
            if batch.len() >= BATCH_FILES {
                break;
            }
            if ready == name || ledger.sha(&ready).is_some() {
                continue;
            }
            let p = dir.join(&ready);
            if let Ok(s) = sha256_file(&p) {
                batch.push((ready, p, s));
            }
        }
        let (stored, snapshot) = self.store_batch(asset, batch)?;
        Ok(PushOutcome {
            name,
            stored,
            snapshot,
        })
    }

    /// Stores the WAL files of `batch` (name, path, SHA-256) not yet in the archive as one
    /// snapshot, records every file in the ledger, and compacts the archive when it grew long.
    /// Returns the names stored and the snapshot's id.
    ///
    /// # Errors
    /// The repository cannot be written, or holds other bytes under one of the names.
    pub(super) fn store_batch(
        &self,
        asset: &ResolvedAsset,
        batch: Vec<(String, PathBuf, String)>,
    ) -> Result<(Vec<String>, Option<String>), EngineError> {
        let ledger_path = self.ledger_path(&asset.name);
        let repo = self.open_primary()?;
        let archive = Archive::load(&repo, &asset.name)?;
        // What the repository already holds is recorded, not stored again; other bytes under
        // a stored name stop the push.
        let mut known = Vec::new();
        let mut fresh = Vec::new();
        for entry in batch {
            match archive.find(&entry.0)? {
                Some(stored) if stored.sha256 == entry.2 => known.push((entry.0, entry.2)),
                Some(_) => return Err(self.conflict(&asset.name, &entry.0)),
                None => fresh.push(entry),
            }
        }
        let mut batch = fresh;
        let mut outcome = (Vec::new(), None);
        if !batch.is_empty() {
            batch.sort_by(|a, b| a.0.cmp(&b.0));
            let names: Vec<String> = batch.iter().map(|b| b.0.clone()).collect();
            let files: Vec<(String, PathBuf)> = batch
                .iter()
                .map(|(n, p, _)| (n.clone(), p.clone()))
                .collect();
            let done = self.wal_snapshot(&repo, &asset.name, &files, Default::default())?;
            for (n, _, s) in &batch {
                let recorded = done.manifest.artifacts.iter().find(|a| a.name == *n);
                if recorded.is_none_or(|a| a.sha256 != *s) {
                    return Err(usage(
                        format!("wal push {}: {n} changed while it was stored", asset.name),
                        "PostgreSQL asks again; if this repeats, check what else writes into pg_wal",
                    ));
                }
            }
            outcome = (names, Some(done.snapshot.id));
        }
        let now = Timestamp::now();
        let mut lines: Vec<String> = batch
            .iter()
            .map(|(n, p, s)| {
                let latency = fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .map_or(0.0, |d| d.as_secs_f64());
                format!("{n} {s} {} {latency:.3}", now.as_second())
            })
            .collect();
        lines.extend(
            known
                .iter()
                .map(|(n, s)| format!("{n} {s} {} 0", now.as_second())),
        );
        Ledger::append(&ledger_path, &lines)?;
        if archive.batches.len() + 1 > COMPACT_ABOVE {
            // Only when the repository is free right now; the next push tries again.
            if let Err(e) = self.compact_in(&repo, &asset.name, std::time::Duration::ZERO) {
                tracing::info!("wal push {}: archive not compacted now: {e}", asset.name);
            }
        }
        Ok(outcome)
    }

    /// Writes one snapshot of `asset`'s archive holding `files` (name, path), with the
    /// first and last name as its reason and `consistency` in its manifest.
    ///
    /// # Errors
    /// The repository cannot be locked or written, or a file cannot be read.
    pub(super) fn wal_snapshot(
        &self,
        repo: &lifeboat_repo::Repo,
        asset: &str,
        files: &[(String, PathBuf)],
        consistency: std::collections::BTreeMap<String, String>,
    ) -> Result<lifeboat_repo::BackupOutcome, EngineError> {
        let names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        let artifacts = files
            .iter()
            .map(|(n, p)| {
                let p = p.clone();
                StreamArtifact {
                    name: n.clone(),
                    data: ArtifactData::Stream(Box::new(move || {
                        Ok(Box::new(fs::File::open(&p)?) as Box<dyn Read + Send>)
                    })),
                }
            })
            .collect();
        let input = BackupInput {
            plan: self.plan().name.clone(),
            asset: wal_asset(asset),
            kind: AssetKind::PostgresCluster,
            source: format!("WAL archive of {asset}"),
            reason: Some(batch_reason(&names)),
            payload: Payload::Streams(artifacts),
            facts: SourceFacts {
                consistency,
                ..SourceFacts::default()
            },
        };
        let lock = repo.lock(LockKind::Shared, &format!("wal push {asset}"))?;
        Ok(repo.backup(&lock, input, None)?)
    }

    /// The refusal of another file under a stored name, raised as a `failure` event first:
    /// archiving stops until someone looks, so someone must be told.
    fn conflict(&self, asset: &str, name: &str) -> EngineError {
        let message = format!(
            "wal push {asset}: the archive holds a different {name}: two clusters archive into the same asset, or this cluster was restored and reuses an old timeline"
        );
        self.raise(&crate::notify::Event::new(
            lifeboat_plan::NotifyEvent::Failure,
            &self.plan().name,
            "wal push",
            Some(asset),
            message.clone(),
        ));
        usage(
            message,
            "give each cluster its own postgres-cluster asset; after a restore in place, promote to a new timeline before archiving",
        )
    }

    /// `wal compact`: folds the archive's older pushes into one snapshot per hour (the last
    /// day) or per day (before), leaving the newest few as they are.
    ///
    /// # Errors
    /// The repository cannot be locked, read or written.
    pub fn wal_compact(&self, asset: &str) -> Result<Compacted, EngineError> {
        let asset = self.cluster_asset(asset)?;
        let repo = self.open_primary()?;
        self.compact_in(&repo, &asset.name, lifeboat_repo::lock_wait_from_env())
    }

    fn compact_in(
        &self,
        repo: &lifeboat_repo::Repo,
        asset: &str,
        wait: std::time::Duration,
    ) -> Result<Compacted, EngineError> {
        let lock = repo.lock_waiting(LockKind::Exclusive, &format!("wal compact {asset}"), wait)?;
        let archive = Archive::load(repo, asset)?;
        let before = archive.batches.len();
        let times: Vec<Timestamp> = archive.batches.iter().map(|b| b.snap.time).collect();
        let mut merged = 0;
        for group in fold_groups(&times, Timestamp::now()) {
            let batches: Vec<_> = group.iter().map(|i| &archive.batches[*i]).collect();
            let first = batches
                .iter()
                .map(|b| b.first.clone())
                .min()
                .unwrap_or_default();
            let last = batches
                .iter()
                .map(|b| b.last.clone())
                .max()
                .unwrap_or_default();
            let snaps: Vec<_> = batches.iter().map(|b| b.snap.clone()).collect();
            repo.merge(&lock, &snaps, &batch_reason(&[first, last]))?;
            merged += snaps.len() - 1;
        }
        if merged > 0 {
            // Snapshots were forgotten (their data lives on in the folded ones): on record.
            self.audit(
                &format!("wal compact {asset}"),
                "ok",
                Some(&format!("{before} pushes folded into {}", before - merged)),
            );
        }
        Ok(Compacted {
            asset: asset.to_owned(),
            before,
            after: before - merged,
        })
    }

    /// `restore_command`: writes the archived file `name` to `dest`. `Ok(false)` when the
    /// archive does not hold it (PostgreSQL then looks elsewhere or ends recovery). Fetches
    /// the next few files into a local cache on the way, so the next calls need no repository.
    ///
    /// # Errors
    /// The repository cannot be read, or gives the file other than recorded.
    pub fn wal_fetch(&self, asset: &str, name: &str, dest: &Path) -> Result<bool, EngineError> {
        let asset = self.cluster_asset(asset)?;
        if WalFile::parse(name, SMALLEST_SEGMENT).is_none() {
            return Err(usage(
                format!("wal fetch {}: {name:?} is not a WAL file name", asset.name),
                "PostgreSQL calls it as: lifeboat wal fetch ASSET %f %p",
            ));
        }
        let cache = self.wal_state(&asset.name, "prefetch");
        let cached = cache.join(name);
        if cached.is_file() {
            move_into(&cached, dest)?;
            return Ok(true);
        }
        let repo = self.open_primary()?;
        let archive = Archive::load(&repo, &asset.name)?;
        let Some(stored) = archive.find(name)? else {
            // A streamed cluster's newest segment may be stored unfinished only: replayed as
            // the segment itself, recovery ends where its records end.
            return match archive.tail()? {
                Some((batch, segment)) if segment == name => {
                    write_atomically(dest, |w| archive.write_tail(batch, w))?;
                    Ok(true)
                }
                _ => Ok(false),
            };
        };
        let index = archive.index_of(stored.batch);
        write_atomically(dest, |w| archive.write(index, &stored.manifest, name, w))?;
        // Read ahead: the files after this one, into the cache (whatever fails is fetched
        // again when asked for).
        let _ = fs::create_dir_all(&cache);
        if let Ok(entries) = fs::read_dir(&cache) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().as_ref() <= name {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        if let Ok(next) = archive.files_from(name) {
            for (n, (batch, manifest)) in next
                .iter()
                .filter(|(n, _)| n.as_str() > name && !n.ends_with(".history"))
                .take(READ_AHEAD)
            {
                let path = cache.join(n);
                let _ = write_atomically(&path, |w| archive.write(*batch, manifest, n, w));
            }
        }
        Ok(true)
    }

    /// `wal status`: how far the archive reaches and whether it has holes.
    ///
    /// # Errors
    /// The repository cannot be read.
    pub fn wal_status(&self, asset: &str) -> Result<WalStatus, EngineError> {
        let asset = self.cluster_asset(asset)?;
        let repo = self.open_primary()?;
        let archive = Archive::load(&repo, &asset.name)?;
        let size = archive.segment_size;
        let mut bases: Vec<_> = repo
            .snapshots()?
            .into_iter()
            .filter(|s| s.asset.as_deref() == Some(asset.name.as_str()) && !s.is_safety())
            .collect();
        bases.sort_by_key(|s| s.time);
        let oldest_base = match bases.first() {
            Some(s) => Some(repo.read_manifest(s)?),
            None => None,
        };
        let files = archive.files_from("")?;
        let newest = files
            .keys()
            .filter_map(|n| match WalFile::parse(n, size) {
                Some(WalFile::Segment { timeline, number }) => Some((timeline, number)),
                _ => None,
            })
            .max_by_key(|(tl, n)| (*n, *tl));
        let start = oldest_base
            .as_ref()
            .and_then(|m| {
                m.consistency
                    .get(lifeboat_sources::postgres::cluster_facts::START_LSN)
            })
            .and_then(|l| Lsn::parse(l))
            .map(|l| lifeboat_core::wal::segment_of(l, size));
        let gaps = start.map_or_else(Vec::new, |start| gaps(files.keys(), size, start));
        let tail = archive.tail()?;
        let newest_push = archive
            .batches
            .last()
            .map(|b| b.snap.time)
            .max(tail.as_ref().map(|(b, _)| b.snap.time));
        let window = oldest_base
            .as_ref()
            .map(|m| m.finished_at)
            .zip(newest_push.or_else(|| bases.last().map(|s| s.time)));
        let backlog = self.unarchived(asset).map(|ready| ready.len());
        let latency = Ledger::read(&self.ledger_path(&asset.name)).last_latency();
        Ok(WalStatus {
            asset: asset.name.clone(),
            batches: archive.batches.len(),
            files: files.len(),
            newest_segment: newest.map(|(tl, n)| segment_name(tl, n, size)),
            archived_to: newest.map(|(_, n)| segment_end(n, size).to_string()),
            unfinished: match &tail {
                Some((batch, segment)) => archive
                    .tail_reaches(batch)?
                    .map(|lsn| (segment.clone(), lsn.to_string())),
                None => None,
            },
            newest_push,
            backlog,
            push_latency_secs: latency,
            window,
            base_backups: bases.len(),
            gaps,
        })
    }

    /// The segments PostgreSQL marked ready in the cluster's `pg_wal` that no push stored
    /// yet, oldest first, with the time each was last written; `None` without `data-dir` (or
    /// when `pg_wal` cannot be read).
    fn unarchived(&self, asset: &ResolvedAsset) -> Option<Vec<(String, Option<SystemTime>)>> {
        let AssetSpec::PostgresCluster(spec) = &asset.spec else {
            return None;
        };
        let dir = spec.data_dir.as_ref()?.join("pg_wal");
        fs::read_dir(dir.join("archive_status")).ok()?;
        let ledger = Ledger::read(&self.ledger_path(&asset.name));
        Some(
            ready_files(&dir)
                .into_iter()
                .filter(|n| ledger.sha(n).is_none())
                .map(|n| {
                    let written = fs::metadata(dir.join(&n)).and_then(|m| m.modified()).ok();
                    (n, written)
                })
                .collect(),
        )
    }

    /// When the oldest segment still waiting for the archive was last written: everything
    /// since is at risk, however recent the last push. `None` for other assets, or when
    /// nothing waits.
    #[must_use]
    pub fn waiting_since(&self, asset: &str) -> Option<Timestamp> {
        let asset = self.cluster_asset(asset).ok()?;
        let oldest = self
            .unarchived(asset)?
            .into_iter()
            .find(|(n, _)| !n.ends_with(".history"))?;
        Timestamp::try_from(oldest.1?).ok()
    }

    /// `wal setup`: the `postgresql.conf` lines that archive into this asset.
    ///
    /// # Errors
    /// The asset is not a cluster.
    pub fn wal_setup(&self, asset: &str, plan: &Path, exe: &Path) -> Result<String, EngineError> {
        let asset = self.cluster_asset(asset)?;
        let quote = |p: &Path| p.display().to_string().replace('\'', "''");
        let AssetSpec::PostgresCluster(spec) = &asset.spec else {
            unreachable!("cluster_asset returns clusters only")
        };
        let user = url::Url::parse(spec.url.expose())
            .ok()
            .map(|u| u.username().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".to_owned());
        if let lifeboat_plan::WalMode::Stream { .. } = spec.wal {
            return Ok(format!(
                "# postgresql.conf of the cluster behind asset {name} (the WAL is streamed, see below)\n\
                 wal_level = replica\n\
                 max_wal_senders = 10\n\
                 max_replication_slots = 10\n\
                 # The slot keeps WAL the stream has not received; cap it so a stream that stays\n\
                 # down cannot fill the disk (past the cap the slot is dropped, and `lifeboat wal\n\
                 # status` shows the gap).\n\
                 max_slot_wal_keep_size = 10GB\n\
                 \n\
                 # pg_hba.conf: the stream and base backups connect for replication as {user}\n\
                 # host replication {user} 127.0.0.1/32 scram-sha-256\n\
                 \n\
                 # Then keep the stream running: `lifeboat daemon` does it for every asset with\n\
                 # wal = \"stream\", or run `{exe} --config {plan} wal stream {name}` as a service.\n\
                 # It creates the replication slot {slot} on its first start; drop that slot if\n\
                 # the asset stops streaming: SELECT pg_drop_replication_slot('{slot}');\n",
                name = asset.name,
                exe = exe.display(),
                plan = plan.display(),
                slot = lifeboat_sources::postgres::Receiver::slot_name(&asset.name),
            ));
        }
        Ok(format!(
            "# postgresql.conf of the cluster behind asset {name} (archive_mode needs a restart)\n\
             wal_level = replica\n\
             archive_mode = on\n\
             archive_command = '{exe} --config {plan} wal push {name} %p'\n\
             archive_timeout = 60s\n\
             \n\
             # pg_hba.conf: base backups connect for replication as {user}\n\
             # host replication {user} 127.0.0.1/32 scram-sha-256\n\
             \n\
             # The server runs archive_command as its own user (postgres): that user reads the\n\
             # plan and the repository's password source and writes the repository and\n\
             # {state}.\n",
            name = asset.name,
            exe = quote(exe),
            plan = quote(plan),
            state = self.plan().base_dir.join(".lifeboat").display(),
        ))
    }
}

fn file_name(path: &Path) -> Result<String, EngineError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if WalFile::parse(&name, SMALLEST_SEGMENT).is_none() {
        return Err(usage(
            format!("wal push: {} is not a WAL file", path.display()),
            "PostgreSQL calls it as: archive_command = 'lifeboat --config PLAN wal push ASSET %p'",
        ));
    }
    Ok(name)
}

pub(super) fn sha256_file(path: &Path) -> Result<String, EngineError> {
    let mut f = fs::File::open(path).map_err(|e| EngineError::io("read", path, e))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(|e| EngineError::io("read", path, e))?;
    Ok(hex::encode(h.finalize()))
}

/// Names of the files PostgreSQL marked ready in `pg_wal` (`dir`), oldest first.
fn ready_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir.join("archive_status"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".ready")
                .map(str::to_owned)
        })
        .collect();
    // History files first: a new timeline's segments need them.
    out.sort_by_key(|n| (!n.ends_with(".history"), n.clone()));
    out
}

/// Moves a cached file to `dest` (a copy when they are on different file systems).
fn move_into(from: &Path, dest: &Path) -> Result<(), EngineError> {
    if fs::rename(from, dest).is_ok() {
        return Ok(());
    }
    write_atomically(dest, |w| {
        let mut f = fs::File::open(from).map_err(|e| EngineError::io("read", from, e))?;
        io::copy(&mut f, w).map_err(|e| EngineError::io("read", from, e))
    })?;
    let _ = fs::remove_file(from);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_the_newest_and_groups_by_hour_then_day() {
        let now: Timestamp = "2026-12-06T12:30:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut times = vec![
            at("2026-12-01T01:00:00Z"),
            at("2026-12-01T23:00:00Z"),
            at("2026-12-02T05:00:00Z"),
            at("2026-12-06T09:10:00Z"),
            at("2026-12-06T09:50:00Z"),
            at("2026-12-06T10:05:00Z"),
        ];
        let recent = at("2026-12-06T10:10:00Z");
        times.extend(
            (0..KEEP_RECENT as i64).map(|i| recent + jiff::SignedDuration::from_mins(i * 5)),
        );
        let groups = fold_groups(&times, now);
        // Two days apart stay apart, one day's two pushes fold; 09:10 and 09:50 fold; 10:05
        // stands alone; the newest eight are left out even in an hour that folds.
        assert_eq!(groups, vec![vec![0, 1], vec![3, 4]]);
        assert!(fold_groups(&times[..KEEP_RECENT], now).is_empty());
    }

    #[test]
    fn ready_files_put_history_first_then_segments_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("archive_status");
        fs::create_dir(&status).unwrap();
        for f in [
            "000000020000000000000005.ready",
            "000000010000000000000004.done",
            "00000002.history.ready",
            "000000020000000000000003.ready",
        ] {
            fs::write(status.join(f), "").unwrap();
        }
        assert_eq!(
            ready_files(dir.path()),
            [
                "00000002.history",
                "000000020000000000000003",
                "000000020000000000000005"
            ]
        );
    }
}
