//! The names of a dump's artifacts in a snapshot, and [`DumpLayout`]: how a snapshot's dump is
//! laid out, read from its manifest.

/// Artifact name of the roles and tablespaces.
pub const GLOBALS_ARTIFACT: &str = "globals.sql";
/// Artifact name of a directory-format dump's table of contents; the other files of the
/// directory sit beside it.
pub const TOC_ARTIFACT: &str = "toc.dat";

/// How a snapshot's dump is laid out, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpLayout {
    /// Directory format (`toc.dat` and its data files) rather than one custom-format file.
    pub directory: bool,
    /// The custom-format file, or `toc.dat`.
    pub dump: String,
    /// Major version of the `pg_dump` that wrote it: `pg_restore` must be at least as new.
    pub pg_dump_major: u32,
}

impl DumpLayout {
    /// # Errors
    /// A manifest without a dump.
    pub fn of(manifest: &lifeboat_core::Manifest) -> Result<Self, String> {
        let facts = &manifest.consistency;
        let directory = facts.get("format").is_some_and(|f| f == "directory");
        let dump = if directory {
            TOC_ARTIFACT.to_owned()
        } else {
            manifest
                .artifacts
                .iter()
                .map(|a| a.name.clone())
                .find(|n| n != GLOBALS_ARTIFACT)
                .ok_or("the snapshot holds no dump")?
        };
        Ok(Self {
            directory,
            dump,
            pg_dump_major: facts
                .get("pg_dump_major")
                .and_then(|m| m.parse().ok())
                .unwrap_or(0),
        })
    }
}
