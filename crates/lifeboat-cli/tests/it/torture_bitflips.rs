//! Torture: one bit flipped in each of 100 pack files, ten packs at a time. `verify
//! --read-data` must find every one and name the asset and snapshot each one hurts.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use lifeboat_testing::write_large_file;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::Value;

use crate::util::{Sandbox, toml_path, toml_str};

/// Pack file name (the pack's id) → path, under `repo/data`.
fn packs(repo: &Path) -> BTreeMap<String, PathBuf> {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.into_path()))
        .collect()
}

/// Flips one random bit among the pack's blobs (before its encrypted header, whose length
/// the last four bytes give), and returns the original bytes.
fn flip_a_bit(path: &Path, rng: &mut StdRng) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let n = original.len();
    let header = u32::from_le_bytes(original[n - 4..].try_into().unwrap()) as usize;
    let blobs = n - 4 - header;
    assert!(blobs > 0, "{}: a pack with blobs", path.display());
    let mut bytes = original.clone();
    bytes[rng.random_range(0..blobs)] ^= 1 << rng.random_range(0..8);
    fs::write(path, &bytes).unwrap();
    original
}

#[test]
fn bit_flips_in_100_packs_are_each_found_and_traced_to_their_snapshot() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("site")).unwrap();
    sb.write_plan(&format!(
        "[assets.db]\ntype = \"command\"\nbackup = {}\n\n\
         [assets.site]\ntype = \"files\"\npaths = [{}]\n",
        toml_str(&format!("cat {}", sb.join("db.bin").display())),
        toml_path(&sb.join("site")),
    ));
    sb.run_ok(&["init"]);

    // Each backup adds new content, so its packs are its own: pack → (asset, snapshot).
    let mut owner: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut seed = 1;
    while owner.len() < 100 {
        for asset in ["db", "site"] {
            seed += 1;
            if asset == "db" {
                write_large_file(&sb.join("db.bin"), 150_000, seed);
            } else {
                write_large_file(&sb.join(&format!("site/page-{seed}.bin")), 40_000, seed);
            }
            let before: BTreeSet<String> = packs(&sb.repo()).into_keys().collect();
            let done = sb.run_ok(&["--json", "backup", asset]).json();
            let snapshot = done["assets"][0]["snapshot"].as_str().unwrap()[..8].to_owned();
            for pack in packs(&sb.repo()).into_keys() {
                if !before.contains(&pack) {
                    owner.insert(pack, (asset.to_owned(), snapshot.clone()));
                }
            }
        }
    }
    let clean = sb.run_ok(&["--json", "verify", "--read-data"]).json();
    assert!(
        clean["findings"].as_array().unwrap().is_empty(),
        "{clean:#}"
    );

    let mut rng = StdRng::seed_from_u64(20_261_205);
    let mut chosen: Vec<&String> = owner.keys().collect();
    chosen.shuffle(&mut rng);
    chosen.truncate(100);
    // Ten packs a round, of ten different snapshots: a snapshot whose tree cannot be read
    // cannot show which of its data it would need, so two hits on one snapshot in one round
    // would be traced to it only once.
    let mut rounds: Vec<Vec<&String>> = Vec::new();
    for id in chosen {
        let free = rounds
            .iter_mut()
            .find(|r| r.len() < 10 && r.iter().all(|other| owner[*other] != owner[id]));
        match free {
            Some(round) => round.push(id),
            None => rounds.push(vec![id]),
        }
    }
    let paths = packs(&sb.repo());
    let mut found = 0;
    for round in &rounds {
        let originals: Vec<(&PathBuf, Vec<u8>)> = round
            .iter()
            .map(|id| {
                let path = &paths[id.as_str()];
                (path, flip_a_bit(path, &mut rng))
            })
            .collect();
        let run = sb.run(&["--json", "verify", "--read-data"]).expect_code(1);
        let report = run.json();
        let findings = report["findings"].as_array().unwrap();
        for id in round {
            let (asset, snapshot) = &owner[id.as_str()];
            let hurt: Vec<&Value> = findings
                .iter()
                .filter(|f| f["pack"].as_str() == Some(id.as_str()))
                .collect();
            assert!(
                hurt.iter()
                    .any(|f| f["asset"] == asset.as_str() && f["snapshot"] == snapshot.as_str()),
                "pack {id} of asset {asset}, snapshot {snapshot}: not named in {findings:#?}"
            );
            assert!(
                hurt.iter().any(|f| {
                    f["message"].as_str().is_some_and(|m| {
                        m.starts_with(&format!("asset {asset}, snapshot {snapshot}"))
                    })
                }),
                "{hurt:#?}"
            );
            found += 1;
        }
        for (path, bytes) in originals {
            fs::write(path, bytes).unwrap();
        }
    }
    assert_eq!(found, 100);
    // Every pack put back: the repository is whole again.
    sb.run_ok(&["verify", "--read-data"]);
}
