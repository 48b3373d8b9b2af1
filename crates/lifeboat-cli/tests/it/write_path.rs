//! Lifeboat's own write path against stock restic 0.14: the repositories it writes pass
//! `restic check --read-data`, restore byte for byte through restic, and deduplicate against
//! what restic wrote (and restic against what Lifeboat wrote), which only happens when both cut
//! chunks at the same places with the repository's polynomial.

use std::{fs, io::Write};

use lifeboat_testing::write_large_file;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{Sandbox, restic, toml_path, toml_str};

const MIB: u64 = 1 << 20;

/// The summary line of `restic backup --json`.
fn restic_summary(stdout: &str) -> Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary from restic: {stdout}"))
}

/// Bytes a snapshot added, as `lifeboat snapshots --json` reports them.
fn added(sb: &Sandbox, asset: &str) -> u64 {
    let snaps = sb.snapshots_of(asset);
    let newest = snaps.last().expect("a snapshot");
    newest["added_bytes"].as_u64().expect("added_bytes")
}

#[test]
fn lifeboat_deduplicates_against_data_restic_wrote() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    fs::create_dir_all(&src).expect("mkdir");
    for (i, size) in [12 * MIB, 5 * MIB, 3 * MIB].into_iter().enumerate() {
        write_large_file(&src.join(format!("big-{i}.bin")), size, 40 + i as u64);
    }
    sb.write_plan(&format!(
        "[assets.site]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&src)
    ));
    sb.run_ok(&["init"]);
    // restic first, into the repository Lifeboat made.
    let first = restic(
        &sb.repo(),
        &["backup", "--json", src.to_str().expect("utf-8")],
    )
    .expect_code(0);
    let summary = restic_summary(&first.stdout);
    assert!(
        summary["data_added"].as_u64().expect("data_added") > 19 * MIB,
        "{summary}"
    );
    // Then Lifeboat over the same files: every chunk is already there.
    sb.run_ok(&["backup", "site"]);
    let ours = added(&sb, "site");
    assert!(
        ours < 64 * 1024,
        "Lifeboat added {ours} bytes over data restic already stored"
    );
    let check = restic(&sb.repo(), &["check", "--read-data"]).expect_code(0);
    assert!(
        check.stdout.contains("no errors were found"),
        "{}",
        check.stdout
    );
}

#[test]
fn restic_deduplicates_against_a_stream_lifeboat_wrote_and_restores_it_byte_for_byte() {
    let sb = Sandbox::new();
    // A dump-like stream: text rows (compressible) with random blocks between them.
    let data = sb.join("dump.bin");
    {
        let mut f = fs::File::create(&data).expect("create");
        let noise = sb.join("noise.bin");
        write_large_file(&noise, 3 * MIB, 7);
        let noise = fs::read(&noise).expect("read");
        for round in 0..6u32 {
            for row in 0..40_000u32 {
                writeln!(f, "{round}\t{row}\taccount-{}\t{:>60}", row % 97, "x").expect("write");
            }
            f.write_all(&noise[(round as usize % 3) * MIB as usize..][..MIB as usize])
                .expect("write");
        }
    }
    let expected = fs::read(&data).expect("read");
    sb.write_plan(&format!(
        "[assets.db]\ntype = \"command\"\nbackup = {}\nfilename = \"db.dump\"\n",
        toml_str(&format!("cat {}", data.display()))
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup", "db"]);
    let sha = hex::encode(Sha256::digest(&expected));

    let check = restic(&sb.repo(), &["check", "--read-data"]).expect_code(0);
    assert!(
        check.stdout.contains("no errors were found"),
        "{}",
        check.stdout
    );
    let dumped = restic(&sb.repo(), &["dump", "latest", "/db/data/db.dump"]).expect_code(0);
    assert_eq!(dumped.stdout_bytes.len(), expected.len());
    assert!(
        dumped.stdout_bytes == expected,
        "restic's dump differs from the stream"
    );
    let manifest = restic(
        &sb.repo(),
        &["dump", "latest", "/db/lifeboat-manifest.json"],
    )
    .expect_code(0);
    let manifest: Value = serde_json::from_slice(&manifest.stdout_bytes).expect("manifest JSON");
    assert_eq!(manifest["artifacts"][0]["sha256"], sha.as_str());
    assert_eq!(manifest["artifacts"][0]["size"], expected.len() as u64);

    // restic backing up the same bytes from stdin stores (almost) nothing new.
    let out = std::process::Command::new("restic")
        .args([
            "-r",
            sb.repo().to_str().expect("utf-8"),
            "--no-cache",
            "backup",
            "--json",
            "--stdin",
        ])
        .env("RESTIC_PASSWORD", crate::util::PASSWORD)
        .stdin(fs::File::open(&data).expect("open"))
        .output()
        .expect("run restic");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = restic_summary(&String::from_utf8_lossy(&out.stdout));
    let restic_added = summary["data_added"].as_u64().expect("data_added");
    assert!(
        restic_added < 64 * 1024,
        "restic added {restic_added} bytes of {}",
        expected.len()
    );
}
