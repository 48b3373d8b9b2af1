//! Listing the snapshots of a repository, and finding one by asset and id.
//!
//! A snapshot file never changes once written (restic names it by the hash of its content),
//! so the process keeps what it has read, per repository, and a listing reads only the
//! files it has not seen: the daemon looks at the repository every minute and on every
//! dashboard page, and a long history would otherwise be read whole each time.

use std::{
    collections::{HashMap, HashSet},
    sync::{LazyLock, Mutex},
    time::Duration,
};

use rustic_core::repofile::SnapshotId;

use crate::{
    error::{RepoError, RepoResult},
    repository::Repo,
    snapshot::SnapshotInfo,
};

/// Snapshots read so far, by repository (location and repository id) and snapshot id.
static SEEN: LazyLock<Mutex<HashMap<String, HashMap<String, SnapshotInfo>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Repo {
    /// Every snapshot, oldest first, Lifeboat's and others' (e.g. written by restic).
    ///
    /// Needs no lock: a snapshot file that a concurrent forget removes between listing and
    /// reading makes rustic fail, so the listing is tried again (three times in all).
    pub fn snapshots(&self) -> RepoResult<Vec<SnapshotInfo>> {
        let key = format!("{}#{}", self.config.location_text(), self.inner.config().id);
        let mut attempt = 0;
        let (listed, files) = loop {
            attempt += 1;
            match self.read_new(&key) {
                Ok(v) => break v,
                Err(e) if attempt < 3 => {
                    tracing::debug!("list snapshots, try {attempt}: {}", crate::error::short(&e));
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(self.err("list snapshots", &e)),
            }
        };
        let mut seen = SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = seen.entry(key).or_default();
        for file in files {
            let info = SnapshotInfo::from_file(file);
            known.insert(info.id.clone(), info);
        }
        // Forgotten since the last listing.
        known.retain(|id, _| listed.contains(id));
        let mut snaps: Vec<SnapshotInfo> = known.values().cloned().collect();
        drop(seen);
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
    }

    /// The ids of every snapshot file, and the files among them not read before.
    fn read_new(
        &self,
        key: &str,
    ) -> rustic_core::RusticResult<(HashSet<String>, Vec<rustic_core::repofile::SnapshotFile>)>
    {
        let listed: HashSet<String> = self
            .inner
            .list::<SnapshotId>()?
            .map(|id| id.to_hex().to_string())
            .collect();
        let new: Vec<&String> = {
            let seen = SEEN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let known = seen.get(key);
            listed
                .iter()
                .filter(|id| known.is_none_or(|k| !k.contains_key(*id)))
                .collect()
        };
        let files = if new.is_empty() {
            Vec::new()
        } else {
            self.inner.get_snapshots(&new)?
        };
        Ok((listed, files))
    }

    /// The snapshot of `asset` whose id starts with `id`, or the newest regular (non-safety)
    /// one when `id` is `None`. A snapshot not written by Lifeboat may be named by id.
    pub fn find_snapshot(&self, asset: &str, id: Option<&str>) -> RepoResult<SnapshotInfo> {
        let snaps = self.snapshots()?;
        let not_found = |detail: String| RepoError::SnapshotNotFound {
            asset: asset.to_owned(),
            id: id.unwrap_or("latest").to_owned(),
            detail,
        };
        match id {
            None | Some("latest") => snaps
                .into_iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
                .ok_or_else(|| not_found("the asset has no snapshot yet".to_owned())),
            Some(prefix) => {
                let matches: Vec<_> = snaps
                    .into_iter()
                    .filter(|s| s.id.starts_with(prefix))
                    .collect();
                match matches.as_slice() {
                    [] => Err(not_found("no snapshot has this id".to_owned())),
                    [one] => {
                        if one.asset.as_deref().is_some_and(|a| a != asset) {
                            return Err(not_found(format!(
                                "this snapshot belongs to asset {}",
                                one.asset.as_deref().unwrap_or_default()
                            )));
                        }
                        Ok(one.clone())
                    }
                    _ => Err(not_found(
                        "the id is ambiguous; give more characters".to_owned(),
                    )),
                }
            }
        }
    }

    /// The newest regular (non-safety) snapshot of `asset` taken before `before`.
    pub fn find_snapshot_before(
        &self,
        asset: &str,
        before: jiff::Timestamp,
    ) -> RepoResult<SnapshotInfo> {
        let ours: Vec<SnapshotInfo> = self
            .snapshots()?
            .into_iter()
            .filter(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
            .collect();
        let when = before.strftime("%Y-%m-%d %H:%M:%S UTC");
        ours.iter()
            .rev()
            .find(|s| s.time < before)
            .cloned()
            .ok_or_else(|| RepoError::SnapshotNotFound {
                asset: asset.to_owned(),
                id: format!("before {when}"),
                detail: match ours.first() {
                    Some(oldest) => format!(
                        "the oldest is {} from {}",
                        oldest.short_id,
                        oldest.time.strftime("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    None => "the asset has no snapshot yet".to_owned(),
                },
            })
    }
}
