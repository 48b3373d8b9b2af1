//! Listing the snapshots of a repository, and finding one by asset and id.

use std::time::Duration;

use crate::{
    error::{RepoError, RepoResult},
    repository::Repo,
    snapshot::SnapshotInfo,
};

impl Repo {
    /// Every snapshot, oldest first, Lifeboat's and others' (e.g. written by restic).
    ///
    /// Needs no lock: a snapshot file that a concurrent forget removes between listing and
    /// reading makes rustic fail, so the listing is tried again (three times in all).
    pub fn snapshots(&self) -> RepoResult<Vec<SnapshotInfo>> {
        let mut attempt = 0;
        let files = loop {
            attempt += 1;
            match self.inner.get_all_snapshots() {
                Ok(files) => break files,
                Err(e) if attempt < 3 => {
                    tracing::debug!("list snapshots, try {attempt}: {}", crate::error::short(&e));
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(self.err("list snapshots", &e)),
            }
        };
        let mut snaps: Vec<SnapshotInfo> = files.into_iter().map(SnapshotInfo::from_file).collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
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
