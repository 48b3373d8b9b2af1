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
                ReadSubsetOption::Size(self.subset_size(pct)?)
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
        let mut trees_failed = false;
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
            let debug = format!("{finding:?}");
            trees_failed |= debug.starts_with("ErrorCheckingTrees");
            let damaged = damaged_pack(&debug, &text).or_else(|| self.tree_pack(&debug, &text));
            match damaged {
                Some(pack) => {
                    tracing::debug!("pack {}: {text}", pack.id);
                    if !report.damaged.iter().any(|d| d.id == pack.id) {
                        report.damaged.push(pack);
                    }
                }
                None => report.errors.push(text),
            }
        }
        // rustic reads the data of the packs the trees it walked use; a tree it cannot read
        // stops that walk, and then it reads no pack at all.
        if trees_failed && let Some(pct) = read_data {
            for pack in self.hash_packs(pct)? {
                if !report.damaged.iter().any(|d| d.id == pack.id) {
                    report.damaged.push(pack);
                }
            }
        }
        Ok(report)
    }

    /// Reads pack files (all at 100 %, else a random share) and compares each one's SHA-256
    /// with its name, which is the hash of its content: every changed byte shows, whatever the
    /// trees say. Used when rustic could not walk the trees to choose the packs itself.
    fn hash_packs(&self, pct: f64) -> RepoResult<Vec<DamagedPack>> {
        use rand::seq::SliceRandom;
        use sha2::{Digest, Sha256};
        let be = self.config.backends()?.repository();
        let mut packs = be
            .list_with_size(rustic_core::FileType::Pack)
            .map_err(|e| self.err("list pack files", &e))?;
        if pct < 100.0 {
            let total: u64 = packs.iter().map(|(_, size)| u64::from(*size)).sum();
            let mut budget = subset_budget(pct, packs.len() as u64, total);
            packs.shuffle(&mut rand::rng());
            packs.retain(|(_, size)| {
                let keep = budget > u64::from(*size);
                if keep {
                    budget -= u64::from(*size);
                }
                keep
            });
        }
        let mut damaged = Vec::new();
        for (id, _) in packs {
            let problem = match be.read_full(rustic_core::FileType::Pack, &id) {
                Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == id.to_hex().to_string() => {
                    continue;
                }
                Ok(_) => "data does not match its hash".to_owned(),
                Err(e) => format!("cannot be read: {}", crate::error::short(&e)),
            };
            damaged.push(DamagedPack {
                id: id.to_hex().to_string(),
                problem,
            });
        }
        Ok(damaged)
    }

    /// The pack of a tree that could not be read, when a tree check failed on one: rustic names
    /// it by the first 8 hex digits of its id (`error processing Pack:1a2b3c4d at ...`), which
    /// is looked up among the repository's packs.
    fn tree_pack(&self, debug: &str, display: &str) -> Option<DamagedPack> {
        if !debug.starts_with("ErrorCheckingTrees") {
            return None;
        }
        let prefixes = [tree_pack_prefix(display)?];
        let id = self
            .inner
            .find_ids::<rustic_core::repofile::PackId, _>(&prefixes)
            .ok()?
            .next()?;
        Some(DamagedPack {
            id: id.to_hex().to_string(),
            problem: "holds a tree that cannot be read".to_owned(),
        })
    }

    /// Bytes of pack data to read for `pct` percent. rustic reads a pack only while the rest
    /// of the budget exceeds its size, so a plain percentage of a repository with few packs
    /// reads none at all; twice the average pack size is always enough for at least one.
    fn subset_size(&self, pct: f64) -> RepoResult<u64> {
        let infos = self
            .inner
            .infos_files()
            .map_err(|e| self.err("list pack files", &e))?;
        let (count, total) = infos
            .repo
            .iter()
            .filter(|i| i.tpe == rustic_core::FileType::Pack)
            .fold((0u64, 0u64), |(c, t), i| (c + i.count, t + i.size));
        Ok(subset_budget(pct, count, total))
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

/// `pct` percent of `total` bytes, but at least twice the average of `count` packs.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]
fn subset_budget(pct: f64, count: u64, total: u64) -> u64 {
    let share = (total as f64 * pct / 100.0) as u64;
    let floor = if pct > 0.0 && count > 0 {
        total / count * 2 + 1
    } else {
        0
    };
    share.max(floor)
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

/// The short pack id in `error processing Pack:1a2b3c4d at BlobLocation ...`.
fn tree_pack_prefix(display: &str) -> Option<&str> {
    let rest = &display[display.find("error processing Pack:")? + "error processing Pack:".len()..];
    let hex = rest.get(..8)?;
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8c1e2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

    #[test]
    fn a_tree_check_failure_names_its_pack_by_prefix() {
        let text = "error checking trees : Message: error processing Pack:f4fcb350 at BlobLocation { offset: 551, length: 198 }";
        assert_eq!(tree_pack_prefix(text), Some("f4fcb350"));
        assert_eq!(
            tree_pack_prefix("error checking trees : no pack here"),
            None
        );
        assert_eq!(tree_pack_prefix("error processing Pack:f4fc"), None);
    }

    #[test]
    fn a_share_of_data_reads_at_least_one_pack() {
        // Two packs of 100 bytes: 10 % is 20 bytes, less than either.
        assert_eq!(subset_budget(10.0, 2, 200), 201);
        // Many packs: the share itself.
        assert_eq!(subset_budget(10.0, 1000, 1_000_000), 100_000);
        assert_eq!(subset_budget(0.0, 10, 1000), 0);
    }

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
