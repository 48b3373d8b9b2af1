//! Where a snapshot keeps an asset's payload. Layout of a snapshot of asset `A` (see
//! docs/repository-format.md):
//!
//! ```text
//! /A/data/<artifact>            streamed artifacts (dumps, command output)
//! /A/files/<absolute path>      walked trees (files assets)
//! /A/lifeboat-format            marker naming the snapshot format
//! /A/lifeboat-manifest.json     written last
//! ```

/// Directory of streamed artifacts inside the asset's directory.
pub const DATA_DIR: &str = "data";
/// Directory of walked trees inside the asset's directory.
pub const FILES_DIR: &str = "files";
/// Marker file before the manifest; its content names the snapshot format.
pub const FORMAT_NAME: &str = "lifeboat-format";
pub(crate) const FORMAT_CONTENT: &[u8] = b"lifeboat snapshot format 1\n";
