//! [`SnapshotInfo`]: a snapshot as Lifeboat lists it, read from tags and the description only.

use jiff::Timestamp;
use lifeboat_core::{AssetKind, ManifestSummary};
use rustic_core::repofile::{SnapshotFile, StringList};
use serde::Serialize;

/// Tag on every snapshot Lifeboat writes.
pub const LIFEBOAT_TAG: &str = "lifeboat";
/// Tag on snapshots taken of a target just before a restore overwrote it.
pub const SAFETY_TAG: &str = "safety";

/// The tags of a new snapshot. Names are validated by the plan (no commas), and the list is
/// built entry by entry, never parsed from a comma-separated string.
pub(crate) fn tags_for(
    plan: &str,
    asset: &str,
    kind: AssetKind,
    reason: Option<&str>,
) -> StringList {
    let mut tags = StringList::default();
    tags.add(LIFEBOAT_TAG.to_owned());
    tags.add(format!("plan={plan}"));
    tags.add(format!("asset={asset}"));
    tags.add(format!("kind={kind}"));
    if reason == Some(SAFETY_TAG) {
        tags.add(SAFETY_TAG.to_owned());
    }
    tags
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    /// Full hex id.
    pub id: String,
    /// First 8 hex digits, as restic shows them.
    pub short_id: String,
    pub time: Timestamp,
    /// `None` for snapshots Lifeboat did not write.
    pub asset: Option<String>,
    pub kind: Option<AssetKind>,
    pub plan: Option<String>,
    pub reason: Option<String>,
    pub hostname: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    /// Bytes read from the source.
    pub bytes: u64,
    /// Bytes the snapshot added to the repository (after dedup and compression).
    pub added_bytes: u64,
    /// Seconds the backup took.
    pub duration_secs: f64,
    #[serde(skip)]
    pub(crate) file: SnapshotFile,
}

impl SnapshotInfo {
    pub(crate) fn from_file(file: SnapshotFile) -> Self {
        let tags: Vec<String> = file.tags.iter().cloned().collect();
        let tag = |key: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_owned)
        };
        let lifeboat = tags.iter().any(|t| t == LIFEBOAT_TAG);
        let summary = file
            .description
            .as_deref()
            .and_then(ManifestSummary::from_description);
        let (asset, kind, plan) = if lifeboat {
            (
                tag("asset"),
                tag("kind").as_deref().and_then(AssetKind::from_name),
                tag("plan"),
            )
        } else {
            (None, None, None)
        };
        let (bytes, added_bytes, duration_secs) = file.summary.as_ref().map_or((0, 0, 0.0), |s| {
            (
                s.total_bytes_processed,
                s.data_added_packed,
                s.total_duration,
            )
        });
        let id = file.id.to_hex().to_string();
        Self {
            short_id: id.chars().take(8).collect(),
            id,
            time: file.time.timestamp(),
            asset,
            kind,
            plan,
            reason: summary.and_then(|s| s.reason),
            hostname: file.hostname.clone(),
            paths: file.paths.iter().cloned().collect(),
            tags,
            bytes,
            added_bytes,
            duration_secs,
            file,
        }
    }

    /// True for a snapshot taken just before a restore.
    #[must_use]
    pub fn is_safety(&self) -> bool {
        self.tags.iter().any(|t| t == SAFETY_TAG)
    }
}
