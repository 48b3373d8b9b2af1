//! What a source hands to the repository for one backup.
//!
//! Sources depend on this crate only, so they describe their data here and the repository crate
//! turns it into a snapshot: streams are read once, through a checksum; trees are walked.

use std::{collections::BTreeMap, fmt, io::Read, path::PathBuf};

/// Opens one stream. Called once, on a repository worker thread.
pub type OpenStream = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

/// Rewrites a small file's content before it is stored (e.g. `.env` values redacted).
pub type ContentFilter = fn(&[u8]) -> Vec<u8>;

/// One artifact, e.g. a database dump or a command's stdout.
pub struct StreamArtifact {
    /// File name inside the snapshot: a plain name, no `/`.
    pub name: String,
    pub data: ArtifactData,
}

/// Where an artifact's bytes come from.
pub enum ArtifactData {
    /// A producer read once to its end (a command's stdout). The reader must report a failed
    /// producer as an `io::Error` at end of stream, not a clean EOF: no snapshot is then made.
    Stream(OpenStream),
    /// A complete file the source already wrote (a database copy), removed when dropped. The
    /// repository stores it as it is, without copying it again.
    File(tempfile::TempPath),
}

impl fmt::Debug for StreamArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamArtifact")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Directories and files to walk, with their filters.
#[derive(Debug, Clone)]
pub struct TreeSpec {
    /// Absolute, sorted, none nested in another.
    pub paths: Vec<PathBuf>,
    /// Glob patterns (gitignore syntax) of entries to skip.
    pub exclude: Vec<String>,
    pub one_file_system: bool,
    /// Applied to every regular file when set.
    pub filter: Option<ContentFilter>,
}

#[derive(Debug)]
pub enum Payload {
    Streams(Vec<StreamArtifact>),
    Tree(TreeSpec),
}

/// Facts a source knows before its data is read, copied into the manifest.
#[derive(Debug, Default)]
pub struct SourceFacts {
    pub server_version: Option<String>,
    pub consistency: BTreeMap<String, String>,
    pub tables: BTreeMap<String, u64>,
    /// Rows per table still being counted while the streams are read (PostgreSQL counts in
    /// the dump's snapshot beside `pg_dump`); they replace `tables` once every stream is read.
    pub pending_tables: Option<PendingTables>,
    /// Facts known only once the streams are read (a base backup's stop position); added to
    /// `consistency` before the manifest is written.
    pub pending_consistency: Option<PendingFacts>,
    pub keys: BTreeMap<String, u64>,
    pub integrity: Option<String>,
}

/// Rows per table that a source computes beside its streams: waited for by the repository
/// after the last stream ends and before the manifest is written. An error fails the backup.
pub struct PendingTables(Box<dyn FnOnce() -> Result<BTreeMap<String, u64>, String> + Send>);

impl PendingTables {
    pub fn new(
        wait: impl FnOnce() -> Result<BTreeMap<String, u64>, String> + Send + 'static,
    ) -> Self {
        Self(Box::new(wait))
    }

    /// Blocks until the counts are known.
    ///
    /// # Errors
    /// The source's own message when counting failed.
    pub fn wait(self) -> Result<BTreeMap<String, u64>, String> {
        (self.0)()
    }
}

impl fmt::Debug for PendingTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingTables")
    }
}

/// Facts a source learns once its streams are read: waited for by the repository after the
/// last stream ends. An error fails the backup.
pub struct PendingFacts(Box<dyn FnOnce() -> Result<BTreeMap<String, String>, String> + Send>);

impl PendingFacts {
    pub fn new(
        wait: impl FnOnce() -> Result<BTreeMap<String, String>, String> + Send + 'static,
    ) -> Self {
        Self(Box::new(wait))
    }

    /// Blocks until the facts are known.
    ///
    /// # Errors
    /// The source's own message.
    pub fn wait(self) -> Result<BTreeMap<String, String>, String> {
        (self.0)()
    }
}

impl fmt::Debug for PendingFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingFacts")
    }
}

/// Everything the repository needs to write one asset's snapshot.
#[derive(Debug)]
pub struct BackupInput {
    pub plan: String,
    pub asset: String,
    pub kind: crate::AssetKind,
    /// Where the data comes from, already redacted.
    pub source: String,
    /// `None` for a regular backup; `Some("safety")` before a restore overwrites the target.
    pub reason: Option<String>,
    pub payload: Payload,
    pub facts: SourceFacts,
}

/// Environment variable naming the spool directory (default: the system temp directory).
pub const SPOOL_DIR_ENV: &str = "LIFEBOAT_SPOOL_DIR";

/// File names in the spool directory start with this and the process id; files of a process
/// that no longer runs are removed by the next backup.
pub const SPOOL_PREFIX: &str = ".lifeboat-spool-";

/// Where artifacts wait between their producer and the repository: `$LIFEBOAT_SPOOL_DIR`, or
/// the system temp directory.
#[must_use]
pub fn spool_dir() -> PathBuf {
    std::env::var_os(SPOOL_DIR_ENV).map_or_else(std::env::temp_dir, PathBuf::from)
}
