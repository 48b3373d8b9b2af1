//! `lifeboat wal stream` (and the daemon, for every asset with `wal = "stream"`): keeps
//! `pg_receivewal` running on the asset's replication slot and stores what it receives.
//!
//! Every `stream-interval` the spool directory is read:
//! - finished segments (and timeline history files) are stored as one batch, like pushes,
//!   and removed from the spool except the newest (`pg_receivewal` starts again from the
//!   newest file it finds there);
//! - the unfinished segment (`<segment>.partial`, padded with zeros to the segment's size) is
//!   stored when it changed, with the position its records reach, and the unfinished segments
//!   stored before it are forgotten when the repository is free.
//!
//! A crash of the server therefore loses at most the records of the last interval. A
//! receiver that stops (the server restarted, the network dropped) is started again; while
//! it is down the slot keeps the server's WAL, and the watchdog reports the age of the
//! newest store against the asset's RPO.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use jiff::Timestamp;
use lifeboat_core::wal::{Lsn, WalFile};
use lifeboat_plan::{AssetSpec, ResolvedAsset, WalMode};
use lifeboat_repo::LockKind;
use lifeboat_sources::{postgres::Receiver, process::RunningChild};

use super::{
    Cluster,
    archive::{Archive, REACHED_LSN},
    ledger::Ledger,
    wal::sha256_file,
};
use crate::{EngineError, engine::Engine};

/// How long a receiver that failed waits before it is started again.
const RESTART_AFTER: Duration = Duration::from_secs(5);

/// What the spool holds: finished files (oldest first) and the unfinished segment.
struct Spool {
    finished: Vec<String>,
    partial: Option<String>,
}

fn read_spool(dir: &Path) -> Spool {
    let mut finished = Vec::new();
    let mut partial = None;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match WalFile::parse(&name, 1 << 20) {
            // pg_receivewal keeps one; should there be more, the newest name is current.
            Some(WalFile::Partial { .. })
                if partial.as_ref().is_none_or(|p: &String| *p < name) =>
            {
                partial = Some(name);
            }
            Some(WalFile::Segment { .. } | WalFile::History { .. }) => finished.push(name),
            _ => {}
        }
    }
    finished.sort_by_key(|n| (!n.ends_with(".history"), n.clone()));
    Spool { finished, partial }
}

/// The position the records of an unfinished segment reach at least: past its last byte
/// that is not zero, rounded up to the 8 bytes records are aligned to. `None` when nothing
/// was written into it yet.
fn reached(path: &Path, segment_start: u64) -> std::io::Result<Option<Lsn>> {
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut offset, mut last) = (0u64, None);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().rposition(|b| *b != 0) {
            last = Some(offset + i as u64);
        }
        offset += n as u64;
    }
    Ok(last.map(|l| Lsn(segment_start + (l + 1).next_multiple_of(8))))
}

impl Engine {
    /// Streams `asset`'s write-ahead log into the primary repository until `stop` turns
    /// true, then stores what was received last.
    ///
    /// # Errors
    /// The asset is not a streamed cluster, or the last store failed. Failures while running
    /// (server down, repository busy) are logged and retried.
    pub fn wal_stream(&self, asset: &str, stop: &AtomicBool) -> Result<(), EngineError> {
        let asset = self.cluster_asset(asset)?;
        let AssetSpec::PostgresCluster(spec) = &asset.spec else {
            unreachable!("cluster_asset returns clusters only")
        };
        let WalMode::Stream { every } = spec.wal else {
            return Err(EngineError::usage(
                format!(
                    "asset {} archives its WAL with archive_command, it does not stream it",
                    asset.name
                ),
                Some(&format!(
                    "set wal = \"stream\" in [assets.{}] to stream it",
                    asset.name
                )),
            ));
        };
        let conn = Cluster { asset, spec }
            .conn()
            .map_err(|e| EngineError::usage(e.to_string(), None))?;
        let receiver = Receiver {
            asset: asset.name.clone(),
            conn,
        };
        let spool = self.wal_state(&asset.name, "stream");
        fs::create_dir_all(&spool).map_err(|e| EngineError::io("create", &spool, e))?;
        let mut last_partial = self.stored_partial(asset);
        let mut child: Option<RunningChild> = None;
        let mut start_at = Instant::now();
        let mut last_error = String::new();
        let mut report = |what: &str, e: &dyn std::fmt::Display| {
            let line = format!("wal stream {}: {what}: {e}", asset.name);
            if line != last_error {
                tracing::warn!("{line}");
                last_error = line;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            if let Some(c) = &mut child
                && !matches!(c.child.try_wait(), Ok(None))
            {
                let tail = c.stderr_tail();
                child = None;
                start_at = Instant::now() + RESTART_AFTER;
                report("pg_receivewal stopped", &tail);
            }
            if child.is_none() && Instant::now() >= start_at {
                match receiver.start(&spool) {
                    Ok(c) => {
                        tracing::info!(
                            "wal stream {}: receiving on slot {}",
                            asset.name,
                            Receiver::slot_name(&asset.name)
                        );
                        child = Some(c);
                    }
                    Err(e) => {
                        start_at = Instant::now() + RESTART_AFTER;
                        report("start pg_receivewal", &e);
                    }
                }
            }
            if let Err(e) = self.store_spool(asset, &spool, &mut last_partial) {
                report("store", &e);
            }
            let until = Instant::now() + every;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100).min(every));
            }
        }
        if let Some(c) = child {
            // SIGINT: pg_receivewal writes what it received and exits.
            if let Ok(pid) = i32::try_from(c.child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            let _ = c.finish();
        }
        self.store_spool(asset, &spool, &mut last_partial)
    }

    /// The name and SHA-256 of the newest unfinished segment in the repository, so a restarted
    /// stream does not store it again.
    fn stored_partial(&self, asset: &ResolvedAsset) -> Option<(String, String)> {
        let repo = self.open_primary().ok()?;
        let archive = Archive::load(&repo, &asset.name).ok()?;
        let newest = archive.partials.last()?;
        let manifest = repo.read_manifest(&newest.snap).ok()?;
        let a = manifest.artifacts.iter().find(|a| a.name == newest.first)?;
        Some((a.name.clone(), a.sha256.clone()))
    }

    /// One look at the spool: finished files stored and cleared, the unfinished segment
    /// stored when it changed.
    fn store_spool(
        &self,
        asset: &ResolvedAsset,
        spool: &Path,
        last_partial: &mut Option<(String, String)>,
    ) -> Result<(), EngineError> {
        let found = read_spool(spool);
        let ledger = Ledger::read(&self.ledger_path(&asset.name)).recent(Timestamp::now());
        let mut batch: Vec<(String, PathBuf, String)> = Vec::new();
        // A finished file never changes again: one the ledger names is stored, and is not
        // read again (the newest stays in the spool and would be hashed at every tick).
        for name in found.finished.iter().filter(|n| ledger.sha(n).is_none()) {
            let path = spool.join(name);
            let sha = sha256_file(&path)?;
            batch.push((name.clone(), path, sha));
        }
        if !batch.is_empty() {
            self.store_batch(asset, batch)?;
        }
        // Stored now: all but the newest segment leave the spool.
        let newest_segment = found
            .finished
            .iter()
            .filter(|n| !n.ends_with(".history"))
            .max()
            .cloned();
        for name in &found.finished {
            if Some(name) != newest_segment.as_ref() {
                let _ = fs::remove_file(spool.join(name));
            }
        }
        let Some(name) = found.partial else {
            return Ok(());
        };
        let path = spool.join(&name);
        let sha = sha256_file(&path)?;
        if last_partial.as_ref() == Some(&(name.clone(), sha.clone())) {
            return Ok(());
        }
        let size = fs::metadata(&path)
            .map_err(|e| EngineError::io("read", &path, e))?
            .len();
        let Some(WalFile::Partial { number, .. }) = WalFile::parse(&name, size.max(1 << 20)) else {
            return Ok(());
        };
        let Some(lsn) =
            reached(&path, number * size).map_err(|e| EngineError::io("read", &path, e))?
        else {
            return Ok(());
        };
        let repo = self.open_primary()?;
        let mut facts = std::collections::BTreeMap::new();
        facts.insert(REACHED_LSN.to_owned(), lsn.to_string());
        let done = self.wal_snapshot(&repo, &asset.name, &[(name.clone(), path)], facts)?;
        let recorded = done.manifest.artifacts.iter().find(|a| a.name == name);
        *last_partial = recorded.map(|a| (name.clone(), a.sha256.clone()));
        self.forget_old_partials(&repo, asset);
        Ok(())
    }

    /// Forgets every stored unfinished segment but the one a recovery would use (none once
    /// its segment is stored finished), when the repository is free right now: they are
    /// harmless meanwhile.
    fn forget_old_partials(&self, repo: &lifeboat_repo::Repo, asset: &ResolvedAsset) {
        let Ok(lock) = repo.lock_waiting(
            LockKind::Exclusive,
            &format!("wal stream {}", asset.name),
            Duration::ZERO,
        ) else {
            return;
        };
        let Ok(archive) = Archive::load(repo, &asset.name) else {
            return;
        };
        let Ok(tail) = archive.tail() else {
            return;
        };
        let tail = tail.map(|(b, _)| b.snap.id.clone());
        let old: Vec<String> = archive
            .partials
            .iter()
            .map(|b| b.snap.id.clone())
            .filter(|id| Some(id) != tail.as_ref())
            .collect();
        if !old.is_empty()
            && let Err(e) = repo.forget(&lock, &old)
        {
            tracing::info!(
                "wal stream {}: older unfinished segments stay for now: {e}",
                asset.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reach_of_a_partial_is_past_its_last_written_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000000010000000000000003.partial");
        let mut data = vec![0u8; 1 << 20];
        data[..100].fill(7);
        data[4093] = 1;
        fs::write(&path, &data).unwrap();
        assert_eq!(
            reached(&path, 3 << 20).unwrap(),
            Some(Lsn((3 << 20) + 4096))
        );
        fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        assert_eq!(reached(&path, 0).unwrap(), None);
    }

    #[test]
    fn the_spool_lists_finished_files_history_first_and_the_newest_partial() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "000000010000000000000004",
            "00000002.history",
            "000000010000000000000003",
            "000000020000000000000005.partial",
            "000000010000000000000004.partial.tmp",
        ] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let s = read_spool(dir.path());
        assert_eq!(
            s.finished,
            [
                "00000002.history",
                "000000010000000000000003",
                "000000010000000000000004"
            ]
        );
        assert_eq!(
            s.partial.as_deref(),
            Some("000000020000000000000005.partial")
        );
    }
}
