//! [`Repo::check`]: rustic's check, with damaged packs picked out of its findings; and
//! [`Repo::snapshots_using`]: which snapshots a damaged pack takes down with it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustic_core::{
    CheckOptions, Id, IndexedFullStatus, ReadSubsetOption, Repository, TreeId, repofile::BlobType,
};

use crate::{
    error::RepoResult,
    lock::{LockKind, RepoLock},
    repository::Repo,
    snapshot::SnapshotInfo,
};

/// Findings of [`Repo::check`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// What is wrong with the index, the snapshots or their trees.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Packs whose data is missing, unreadable or does not match its hash; one entry per pack.
    pub damaged: Vec<DamagedPack>,
}

/// A pack that cannot give back what the index says it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedPack {
    /// Full hex id.
    pub id: String,
    /// What is wrong, e.g. `data does not match its hash`.
    pub problem: String,
}

impl Repo {
    /// Checks the repository: index against pack files always, and the trees of `snapshots`
    /// (every snapshot when `None`). With `read_data`, also reads and authenticates the packs
    /// those trees use: all of them at 100, else a random subset of about that percentage.
    /// Needs an exclusive lock, as restic's check: a backup running meanwhile would leave
    /// packs no index lists yet.
    pub fn check(
        &self,
        lock: &RepoLock,
        snapshots: Option<&[SnapshotInfo]>,
        read_data: Option<f64>,
    ) -> RepoResult<CheckReport> {
        self.check_lock(lock, LockKind::Exclusive)?;
        let mut opts = CheckOptions::default();
        if let Some(pct) = read_data {
            opts.read_data = true;
            // rustic's percentage leaves out the pack that would reach it exactly, so 100 %
            // must be asked for as all.
            opts.read_data_subset = if pct >= 100.0 {
                ReadSubsetOption::All
            } else {
                ReadSubsetOption::Percentage(pct)
            };
        }
        let results = match snapshots {
            None => self.inner.check(opts),
            Some(snaps) => self
                .inner
                .check_with_trees(opts, snaps.iter().map(|s| s.file.tree).collect()),
        }
        .map_err(|e| self.err("check", &e))?;
        let mut report = CheckReport::default();
        for (level, finding) in results.0 {
            let text = finding.to_string().replace(
                "To repair: 'rustic repair index'.",
                "Left by an interrupted backup; `lifeboat prune` removes it.",
            );
            // rustic exports neither the level's type nor the finding's; their Debug names
            // are stable.
            if format!("{level:?}") != "Error" {
                report.warnings.push(text);
                continue;
            }
            match damaged_pack(&format!("{finding:?}"), &text) {
                Some(pack) => {
                    tracing::debug!("pack {}: {text}", pack.id);
                    if !report.damaged.iter().any(|d| d.id == pack.id) {
                        report.damaged.push(pack);
                    }
                }
                None => report.errors.push(text),
            }
        }
        Ok(report)
    }

    /// Which of `snapshots` use each of the damaged `packs` (full hex ids), each list in the
    /// order of `snapshots`; a pack none of them uses is left out.
    ///
    /// Walks the snapshots' trees through the index (each tree once, however many snapshots
    /// share it), then reads back every blob they use from those packs: a snapshot is damaged
    /// by a pack only when a blob it needs no longer decrypts (a tree that cannot be read counts
    /// as one). Deduplication shares blobs across assets (e.g. identical small files), so a
    /// snapshot may use a damaged pack without using its damaged part. Costs a full index load
    /// and a read of every tree: call it only once a pack is known to be damaged.
    pub fn snapshots_using(
        &self,
        packs: &[String],
        snapshots: &[SnapshotInfo],
    ) -> RepoResult<BTreeMap<String, PackUsers>> {
        let damaged: HashSet<Id> = packs.iter().filter_map(|p| p.parse().ok()).collect();
        let indexed = self.indexed()?;
        let mut walk = Walk {
            repo: &indexed,
            damaged: &damaged,
            seen: HashMap::new(),
        };
        let used: Vec<(&SnapshotInfo, BTreeSet<Blob>)> = snapshots
            .iter()
            .map(|snap| (snap, walk.tree(snap.file.tree)))
            .collect();
        let mut unreadable: HashMap<Blob, bool> = HashMap::new();
        let mut users: BTreeMap<String, PackUsers> = BTreeMap::new();
        for (snap, blobs) in used {
            let mut hit: BTreeMap<Id, bool> = BTreeMap::new();
            for blob in blobs {
                let bad = *unreadable.entry(blob).or_insert_with(|| {
                    let tpe = if blob.tree {
                        BlobType::Tree
                    } else {
                        BlobType::Data
                    };
                    indexed
                        .cat_blob(tpe, &blob.id.to_hex())
                        .inspect_err(|e| {
                            tracing::debug!("read blob {}: {}", blob.id, crate::error::short(e));
                        })
                        .is_err()
                });
                *hit.entry(blob.pack).or_default() |= bad;
            }
            for (pack, bad) in hit {
                let entry = users.entry(pack.to_hex().to_string()).or_default();
                let list = if bad {
                    &mut entry.damaged
                } else {
                    &mut entry.intact
                };
                list.push(snap.id.clone());
            }
        }
        Ok(users)
    }
}

/// Snapshots that use one damaged pack, by full id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackUsers {
    /// Need a blob of it that no longer reads back.
    pub damaged: Vec<String>,
    /// Use only blobs of it that still read back intact.
    pub intact: Vec<String>,
}

/// A blob stored in a damaged pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Blob {
    pack: Id,
    id: Id,
    tree: bool,
}

/// The blobs in damaged packs found under each tree, remembered: snapshots of one asset share
/// most of their trees.
struct Walk<'a> {
    repo: &'a Repository<IndexedFullStatus>,
    damaged: &'a HashSet<Id>,
    seen: HashMap<TreeId, BTreeSet<Blob>>,
}

impl Walk<'_> {
    fn tree(&mut self, id: TreeId) -> BTreeSet<Blob> {
        if let Some(found) = self.seen.get(&id) {
            return found.clone();
        }
        let mut found = BTreeSet::new();
        if let Ok(entry) = self.repo.get_index_entry(&id)
            && self.damaged.contains(&*entry.pack)
        {
            found.insert(Blob {
                pack: *entry.pack,
                id: *id,
                tree: true,
            });
        }
        match self.repo.get_tree(&id) {
            Ok(tree) => {
                for node in tree.nodes {
                    for blob in node.content.iter().flatten() {
                        if let Ok(entry) = self.repo.get_index_entry(blob)
                            && self.damaged.contains(&*entry.pack)
                        {
                            found.insert(Blob {
                                pack: *entry.pack,
                                id: **blob,
                                tree: false,
                            });
                        }
                    }
                    if let Some(subtree) = node.subtree {
                        found.extend(self.tree(subtree));
                    }
                }
            }
            Err(e) => tracing::debug!("read tree {id}: {}", crate::error::short(&e)),
        }
        self.seen.insert(id, found.clone());
        found
    }
}

/// The pack a check finding is about, when it says the pack's content is damaged or gone.
/// `debug` is the finding's Debug text (variant name, then `id: PackId(<hex>)` or
/// `id: <hex>`), `display` its message.
fn damaged_pack(debug: &str, display: &str) -> Option<DamagedPack> {
    let variant = debug.split([' ', '{', '(']).next().unwrap_or_default();
    let problem = match variant {
        "ErrorCheckingPack"
        | "PackHashMismatch"
        | "PackBlobHashMismatch"
        | "PackBlobLengthMismatch"
        | "PackSizeMismatch" => "data does not match its hash".to_owned(),
        "PackHeaderMismatchIndex" | "PackHeaderLengthMismatch" => {
            "its header does not match the index".to_owned()
        }
        "ErrorReadingPack" => match display.split_once(" : ") {
            Some((_, why)) => format!("cannot be read: {}", why.lines().next().unwrap_or(why)),
            None => "cannot be read".to_owned(),
        },
        "NoPack" => "is missing, though the index lists it".to_owned(),
        "PackSizeMismatchIndex" => "has another size than the index says".to_owned(),
        _ => return None,
    };
    let rest = &debug[debug.find("id: ")? + 4..];
    let rest = rest.strip_prefix("PackId(").unwrap_or(rest);
    let hex = rest.get(..64)?;
    let id: Id = hex.parse().ok()?;
    Some(DamagedPack {
        id: id.to_hex().to_string(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8c1e2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

    #[test]
    fn picks_the_pack_out_of_damage_findings() {
        let found = damaged_pack(
            &format!("ErrorCheckingPack {{ id: PackId({HEX}), source: RusticError {{ .. }} }}"),
            "error checking pack 8c1e2a3b : Data decryption failed",
        );
        assert_eq!(
            found,
            Some(DamagedPack {
                id: HEX.to_owned(),
                problem: "data does not match its hash".to_owned()
            })
        );
        let missing = damaged_pack(
            &format!("NoPack {{ id: PackId({HEX}), to_delete: false, size: 10 }}"),
            "",
        );
        assert_eq!(
            missing.map(|p| p.problem).as_deref(),
            Some("is missing, though the index lists it")
        );
        let resized = damaged_pack(
            &format!("PackSizeMismatchIndex {{ id: {HEX}, to_delete: false }}"),
            "",
        );
        assert_eq!(resized.map(|p| p.id).as_deref(), Some(HEX));
        let unreadable = damaged_pack(
            &format!("ErrorReadingPack {{ id: PackId({HEX}), source: .. }}"),
            "error reading pack 8c1e2a3b : permission denied\nmore",
        );
        assert_eq!(
            unreadable.map(|p| p.problem).as_deref(),
            Some("cannot be read: permission denied")
        );
    }

    #[test]
    fn other_findings_are_not_about_a_pack() {
        assert_eq!(
            damaged_pack(&format!("PackNotReferenced {{ id: {HEX} }}"), ""),
            None
        );
        assert_eq!(
            damaged_pack(
                "FileBlobNotInIndex { file: \"/a\", blob_id: DataId(..) }",
                ""
            ),
            None
        );
        // A shape this code does not know is left as an error text, not guessed at.
        assert_eq!(
            damaged_pack("PackHashMismatch { id: PackId(8c1e) }", ""),
            None
        );
    }
}
