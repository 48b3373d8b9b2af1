//! Gives an asset a long history for `bench/dashboard.sh`: one real backup of a command
//! asset through Lifeboat's write path, then COUNT copies of its snapshot file with earlier
//! times (a minute apart) and sizes that wander, written in one go. COUNT runs of
//! `lifeboat backup` would take hours, each loading every index file the ones before wrote.
//!
//! `cargo run --release -p lifeboat-repo --example many_snapshots -- REPO PLAN ASSET COUNT`,
//! the password in `$BENCH_PW`.

use std::io::Cursor;

use anyhow::Context;
use lifeboat_core::{
    ArtifactData, AssetKind, BackupInput, Payload, RepoLocation, Secret, SourceFacts,
    StreamArtifact,
};
use lifeboat_repo::{LockKind, Progress, Repo, RepoConfig};
use rustic_core::{Credentials, Repository, RepositoryOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, plan, asset, count] = args.as_slice() else {
        anyhow::bail!("usage: many_snapshots REPO PLAN ASSET COUNT");
    };
    let count: i64 = count.parse()?;
    let password = std::env::var("BENCH_PW").context("BENCH_PW")?;
    let config = RepoConfig {
        name: "bench".to_owned(),
        location: RepoLocation::Local { path: path.into() },
        password: Secret::new(password.clone()),
        s3_credentials: None,
    };
    let repo = Repo::open(&config, &Progress::hidden())?;
    let lock = repo.lock(LockKind::Shared, "bench history")?;
    let input = BackupInput {
        plan: plan.clone(),
        asset: asset.clone(),
        kind: AssetKind::Command,
        source: "bench".to_owned(),
        reason: None,
        payload: Payload::Streams(vec![StreamArtifact {
            name: "out".to_owned(),
            data: ArtifactData::Stream(Box::new(|| {
                let bytes = b"history\n".repeat(4096);
                Ok(Box::new(Cursor::new(bytes)) as Box<dyn std::io::Read + Send>)
            })),
        }]),
        facts: SourceFacts::default(),
    };
    let id = repo.backup(&lock, input, None)?.snapshot.id;
    drop(lock);

    let backends = rustic_backend::BackendOptions::default()
        .repository(path.clone())
        .to_backends()?;
    let raw = Repository::new(&RepositoryOptions::default(), &backends)?
        .open(&Credentials::password(password))?;
    let template = raw
        .get_all_snapshots()?
        .into_iter()
        .find(|s| s.id.to_hex().as_str() == id)
        .context("the backup's snapshot")?;
    let mut copies = Vec::new();
    for i in 1..=count {
        let mut s = template.clone();
        s.time = template.time.checked_sub(jiff::Span::new().minutes(i))?;
        if let Some(summary) = s.summary.as_mut() {
            // Sizes that wander, so the size chart has a line to draw.
            let wobble = u64::try_from((i * 7919) % 5000).unwrap_or(0);
            summary.total_bytes_processed = 30_000 + wobble * 10;
        }
        copies.push(s);
    }
    raw.save_snapshots(copies)?;
    Ok(())
}
