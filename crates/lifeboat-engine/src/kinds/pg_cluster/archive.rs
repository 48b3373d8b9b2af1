//! The write-ahead log archive of a `postgres-cluster` asset, as it lies in the repository.
//!
//! Each push stores one batch: a snapshot of the reserved asset `_wal-<asset>` whose
//! artifacts are the WAL files, named as PostgreSQL names them, with a manifest holding each
//! one's size and SHA-256 like any other snapshot (stock restic lists, checks and restores
//! it). The snapshot's reason, `wal FIRST LAST`, names its first and last file, so a file is
//! found by reading the manifests of the few batches whose range holds its name.
//!
//! A streamed cluster also stores its unfinished segment every few seconds, as a snapshot
//! holding one `<segment>.partial` file (reason `wal X.partial X.partial`, the position it
//! reaches in the manifest's `reached-lsn`). Those stand apart from the batches: each
//! replaces the one before, and a recovery replays the newest as the segment itself when no
//! finished copy of that segment is stored.

use std::collections::BTreeMap;

use lifeboat_core::{
    Manifest,
    wal::{DEFAULT_SEGMENT_SIZE, Lsn, WalFile},
};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::postgres::cluster_facts;

use crate::EngineError;

/// Prefix of the reserved asset holding an asset's archived WAL (names never start with `_`).
pub(crate) const WAL_PREFIX: &str = "_wal-";
/// Prefix of a batch snapshot's reason.
const REASON: &str = "wal ";
/// Suffix of an unfinished segment's name.
pub(crate) const PARTIAL: &str = ".partial";
/// Manifest key (`consistency`) of a stored unfinished segment: the position its records
/// reach at least.
pub(crate) const REACHED_LSN: &str = "reached-lsn";

pub(crate) fn wal_asset(asset: &str) -> String {
    format!("{WAL_PREFIX}{asset}")
}

pub(crate) fn batch_reason(names: &[String]) -> String {
    let first = names.first().map_or("", String::as_str);
    let last = names.last().map_or("", String::as_str);
    format!("{REASON}{first} {last}")
}

/// One push: its snapshot and the range of names it holds.
pub(crate) struct Batch {
    pub snap: SnapshotInfo,
    pub first: String,
    pub last: String,
}

/// What the repository holds of one asset's archive, from the snapshot list alone.
pub(crate) struct Archive<'r> {
    repo: &'r Repo,
    /// Oldest first.
    pub batches: Vec<Batch>,
    /// Stored unfinished segments, oldest first.
    pub partials: Vec<Batch>,
    /// The newest base backup's segment size (all of a cluster's are the same).
    pub segment_size: u64,
}

/// A file of the archive with the batch that holds it.
pub(crate) struct Stored<'a> {
    pub batch: &'a Batch,
    pub manifest: Manifest,
    pub sha256: String,
}

impl<'r> Archive<'r> {
    /// Lists the batches of `asset`'s archive.
    ///
    /// # Errors
    /// The repository cannot be listed.
    pub fn load(repo: &'r Repo, asset: &str) -> Result<Self, EngineError> {
        let wal = wal_asset(asset);
        let snaps = repo.snapshots()?;
        let segment_size = snaps
            .iter()
            .filter(|s| s.asset.as_deref() == Some(asset))
            .max_by_key(|s| s.time)
            .and_then(|s| repo.read_manifest(s).ok())
            .and_then(|m| m.consistency.get(cluster_facts::SEGMENT_SIZE)?.parse().ok())
            .unwrap_or(DEFAULT_SEGMENT_SIZE);
        let (mut partials, mut batches): (Vec<Batch>, Vec<Batch>) = snaps
            .into_iter()
            .filter(|s| s.asset.as_deref() == Some(wal.as_str()))
            .filter_map(|snap| {
                let reason = snap.reason.as_deref()?.strip_prefix(REASON)?;
                let (first, last) = reason.split_once(' ')?;
                let (first, last) = (first.to_owned(), last.to_owned());
                Some(Batch { snap, first, last })
            })
            .partition(|b| b.first.ends_with(PARTIAL));
        batches.sort_by_key(|b| b.snap.time);
        partials.sort_by_key(|b| b.snap.time);
        Ok(Self {
            repo,
            batches,
            partials,
            segment_size,
        })
    }

    /// The stored copy of `name`, the newest when pushed twice.
    ///
    /// # Errors
    /// A manifest cannot be read.
    pub fn find(&self, name: &str) -> Result<Option<Stored<'_>>, EngineError> {
        for batch in self.batches.iter().rev() {
            if batch.first.as_str() > name || batch.last.as_str() < name {
                continue;
            }
            let manifest = self.repo.read_manifest(&batch.snap)?;
            if let Some(a) = manifest.artifacts.iter().find(|a| a.name == name) {
                let sha256 = a.sha256.clone();
                return Ok(Some(Stored {
                    batch,
                    manifest,
                    sha256,
                }));
            }
        }
        Ok(None)
    }

    /// Every file whose name is at least `from` (by name, which orders a timeline's
    /// segments), with the batch holding it; history files always. The newest copy wins.
    ///
    /// # Errors
    /// A manifest cannot be read.
    pub fn files_from(
        &self,
        from: &str,
    ) -> Result<BTreeMap<String, (usize, Manifest)>, EngineError> {
        let mut out: BTreeMap<String, (usize, Manifest)> = BTreeMap::new();
        for (i, batch) in self.batches.iter().enumerate() {
            let has_history = batch.first.ends_with(".history");
            if batch.last.as_str() < from && !has_history {
                continue;
            }
            let manifest = self.repo.read_manifest(&batch.snap)?;
            for a in &manifest.artifacts {
                let history = matches!(
                    WalFile::parse(&a.name, self.segment_size),
                    Some(WalFile::History { .. })
                );
                if history || a.name.as_str() >= from {
                    out.insert(a.name.clone(), (i, manifest.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Writes one stored file into `w`, checked against its recorded SHA-256.
    ///
    /// # Errors
    /// The repository cannot give it as recorded.
    pub fn write(
        &self,
        batch: usize,
        manifest: &Manifest,
        name: &str,
        w: &mut dyn std::io::Write,
    ) -> Result<u64, EngineError> {
        Ok(self
            .repo
            .dump_artifact(&self.batches[batch].snap, manifest, name, w)?)
    }

    /// The newest stored unfinished segment, when no finished copy of that segment is
    /// stored: its batch and the segment's name (what a recovery asks for).
    ///
    /// # Errors
    /// A manifest cannot be read.
    pub fn tail(&self) -> Result<Option<(&Batch, String)>, EngineError> {
        let Some(newest) = self.partials.last() else {
            return Ok(None);
        };
        let segment = newest.first.trim_end_matches(PARTIAL).to_owned();
        Ok(self.find(&segment)?.is_none().then_some((newest, segment)))
    }

    /// Writes the unfinished segment stored in `batch` into `w`.
    ///
    /// # Errors
    /// The repository cannot give it as recorded.
    pub fn write_tail(
        &self,
        batch: &Batch,
        w: &mut dyn std::io::Write,
    ) -> Result<u64, EngineError> {
        let manifest = self.repo.read_manifest(&batch.snap)?;
        Ok(self
            .repo
            .dump_artifact(&batch.snap, &manifest, &batch.first, w)?)
    }

    /// The position the unfinished segment in `batch` reaches, as recorded when it was stored.
    ///
    /// # Errors
    /// The manifest cannot be read.
    pub fn tail_reaches(&self, batch: &Batch) -> Result<Option<Lsn>, EngineError> {
        let manifest = self.repo.read_manifest(&batch.snap)?;
        Ok(manifest
            .consistency
            .get(REACHED_LSN)
            .and_then(|l| Lsn::parse(l)))
    }

    /// The index of `batch` in [`Self::batches`].
    pub fn index_of(&self, batch: &Batch) -> usize {
        self.batches
            .iter()
            .position(|b| b.snap.id == batch.snap.id)
            .unwrap_or(0)
    }
}

/// Runs of segments missing on `timeline`'s numbering from segment `start` to the newest
/// segment stored: first and last name of each run. Any timeline's copy of a number counts
/// (after a promotion the new timeline continues the old one's numbers).
pub(crate) fn gaps<'a>(
    names: impl Iterator<Item = &'a String>,
    segment_size: u64,
    start: u64,
) -> Vec<(String, String)> {
    let segments: Vec<(u32, u64)> = names
        .filter_map(|n| match WalFile::parse(n, segment_size) {
            Some(WalFile::Segment { timeline, number }) => Some((timeline, number)),
            _ => None,
        })
        .collect();
    let Some(&(tl, last)) = segments.iter().max_by_key(|(tl, n)| (*n, *tl)) else {
        return Vec::new();
    };
    let have: std::collections::BTreeSet<u64> = segments.iter().map(|s| s.1).collect();
    let mut out = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for n in start..=last {
        if have.contains(&n) {
            if let Some((a, b)) = run.take() {
                out.push((
                    lifeboat_core::wal::segment_name(tl, a, segment_size),
                    lifeboat_core::wal::segment_name(tl, b, segment_size),
                ));
            }
        } else {
            run = Some(run.map_or((n, n), |(a, _)| (a, n)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_runs_of_missing_numbers_up_to_the_newest() {
        let size = DEFAULT_SEGMENT_SIZE;
        let names: Vec<String> = [3u64, 4, 7, 9]
            .iter()
            .map(|n| lifeboat_core::wal::segment_name(1, *n, size))
            .chain(["00000001.history".to_owned()])
            .collect();
        assert_eq!(
            gaps(names.iter(), size, 3),
            [
                (
                    "000000010000000000000005".to_owned(),
                    "000000010000000000000006".to_owned()
                ),
                (
                    "000000010000000000000008".to_owned(),
                    "000000010000000000000008".to_owned()
                ),
            ]
        );
        // From a later start, the older hole does not count.
        assert_eq!(gaps(names.iter(), size, 7).len(), 1);
        assert!(gaps(std::iter::empty(), size, 0).is_empty());
    }

    #[test]
    fn a_batch_reason_names_its_first_and_last_file() {
        let names = vec![
            "000000010000000000000003".to_owned(),
            "000000010000000000000004".to_owned(),
        ];
        assert_eq!(
            batch_reason(&names),
            "wal 000000010000000000000003 000000010000000000000004"
        );
        assert_eq!(wal_asset("main"), "_wal-main");
    }
}
