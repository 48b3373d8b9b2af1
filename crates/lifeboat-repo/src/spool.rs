//! Files that sources write before the repository reads them (a parallel `pg_dump`'s
//! directory, a MariaDB dump, a Redis RDB) live in the spool directory under names that carry
//! the writer's pid. The repository itself spools nothing: streams go straight into packs.

pub use lifeboat_core::{SPOOL_DIR_ENV, SPOOL_PREFIX, spool_dir};

/// Removes what a Lifeboat process that no longer runs left in `spool_dir()` (a killed
/// backup).
pub(crate) fn sweep() {
    remove_stale(&spool_dir());
}

/// Removes spool files left by a Lifeboat process that no longer runs (a killed backup).
/// Their names carry the writer's pid.
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SPOOL_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(
                "removing {} left by an interrupted backup",
                entry.path().display()
            );
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
