//! The manifest: what a snapshot holds and the facts recorded when it was taken.
//!
//! Every snapshot carries `/<asset>/lifeboat-manifest.json`; a [`ManifestSummary`] of it goes into
//! the snapshot's description so listings never read trees. Format: `docs/repository-format.md`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::AssetKind;

/// Current manifest format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// File name of the manifest inside the asset's directory of a snapshot.
pub const MANIFEST_NAME: &str = "lifeboat-manifest.json";

/// Marker that starts the summary line in a snapshot description.
const SUMMARY_MARKER: &str = "lifeboat-summary: ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub plan: String,
    pub asset: String,
    pub kind: AssetKind,
    pub tool_version: String,
    /// Where the data came from, with any password masked.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The consistency point (e.g. `snapshot`, `lsn`, `replication-offset`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consistency: BTreeMap<String, String>,
    pub artifacts: Vec<ArtifactRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FileFacts>,
    /// Row count per table, taken in the same consistent view as the dump.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, u64>,
    /// Key count per Redis database.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    /// Why this snapshot was taken when it was not a scheduled backup (e.g. `safety`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Things that went wrong without failing the backup (e.g. a file that could not be read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One streamed artifact (a dump, a command's output) and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ArtifactRecord {
    /// Name given by the source, e.g. `db.dump`.
    pub name: String,
    /// Absolute path inside the snapshot, e.g. `/db/db.dump`.
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the artifact's bytes.
    pub sha256: String,
}

/// Counts for a `files` asset, taken while walking the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileFacts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub other: u64,
    pub bytes: u64,
    /// Files whose values were replaced (`redact = "values"`).
    #[serde(default)]
    pub redacted: u64,
    /// Original paths of the asset, in the order backed up.
    pub paths: Vec<String>,
}

impl Manifest {
    /// Total bytes of the snapshot's payload (artifacts or files).
    #[must_use]
    pub fn payload_bytes(&self) -> u64 {
        self.artifacts.iter().map(|a| a.size).sum::<u64>()
            + self.files.as_ref().map_or(0, |f| f.bytes)
    }

    #[must_use]
    pub fn artifact(&self, name: &str) -> Option<&ArtifactRecord> {
        self.artifacts.iter().find(|a| a.name == name)
    }

    /// The parts of the summary known before the backup starts.
    #[must_use]
    pub fn summary(&self) -> ManifestSummary {
        ManifestSummary {
            plan: self.plan.clone(),
            asset: self.asset.clone(),
            kind: self.kind,
            source: self.source.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// The compact part of a manifest kept in the snapshot description.
///
/// The description is written when the backup starts (restic stores it in the snapshot file,
/// which is saved last), so it holds what is known then; sizes and times come from the
/// snapshot's own summary, and the full manifest from the snapshot's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManifestSummary {
    pub plan: String,
    pub asset: String,
    pub kind: AssetKind,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ManifestSummary {
    /// The snapshot description: a human line, then the summary as one JSON line.
    #[must_use]
    pub fn to_description(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!(
            "Lifeboat backup of asset {} ({})\n{SUMMARY_MARKER}{json}",
            self.asset, self.kind
        )
    }

    /// Reads the summary back from a description; `None` for snapshots Lifeboat did not write.
    #[must_use]
    pub fn from_description(description: &str) -> Option<Self> {
        description
            .lines()
            .find_map(|l| l.strip_prefix(SUMMARY_MARKER))
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            plan: "p".into(),
            asset: "vault".into(),
            kind: AssetKind::Command,
            tool_version: "0.1.0".into(),
            source: "command".into(),
            server_version: None,
            started_at: Timestamp::from_second(1_700_000_000).unwrap(),
            finished_at: Timestamp::from_second(1_700_000_010).unwrap(),
            consistency: BTreeMap::new(),
            artifacts: vec![ArtifactRecord {
                name: "vault.out".into(),
                path: "/vault/vault.out".into(),
                size: 42,
                sha256: "ab".repeat(32),
            }],
            files: None,
            tables: BTreeMap::new(),
            keys: BTreeMap::new(),
            integrity: None,
            reason: None,
            warnings: vec![],
        }
    }

    #[test]
    fn summary_round_trips_through_description() {
        let s = sample().summary();
        let d = s.to_description();
        assert!(d.starts_with("Lifeboat backup of asset vault"), "{d}");
        assert_eq!(ManifestSummary::from_description(&d), Some(s));
        assert_eq!(ManifestSummary::from_description("made by restic"), None);
    }

    #[test]
    fn manifest_json_round_trips() {
        let m = sample();
        let json = serde_json::to_string_pretty(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
        assert_eq!(m.payload_bytes(), 42);
    }
}
