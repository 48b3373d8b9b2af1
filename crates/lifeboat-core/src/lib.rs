//! Lifeboat's domain types, shared by every other crate.
//!
//! Nothing here does I/O. The plan crate produces these types, the sources and the repository
//! consume them, and the engine moves them between the two.

pub mod anomaly;
pub mod asset;
pub mod exit;
pub mod location;
pub mod manifest;
pub mod payload;
pub mod retention;
pub mod secret;
pub mod size;
pub mod wal;

pub use anomaly::{AnomalyThresholds, SizeDeviation};
pub use asset::{AssetKind, Priority};
pub use exit::Exit;
pub use location::{RepoLocation, S3Location};
pub use manifest::{
    ArtifactRecord, FileFacts, MANIFEST_FORMAT, MANIFEST_NAME, Manifest, ManifestSummary,
};
pub use payload::{
    ArtifactData, BackupInput, Payload, PendingFacts, PendingTables, SPOOL_DIR_ENV, SPOOL_PREFIX,
    SourceFacts, StreamArtifact, TreeSpec, spool_dir,
};
pub use retention::Retention;
pub use secret::{Redacted, Secret, redact_url};
pub use size::{SizeBounds, parse_size};

/// Lifeboat's version, written into every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
