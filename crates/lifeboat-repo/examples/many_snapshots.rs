//! Writes COUNT small snapshots of one command asset into an existing local repository, in
//! one process: a repository with a long history for `bench/dashboard.sh`, which would
//! take hours through COUNT runs of `lifeboat backup`.
//!
//! `cargo run --release -p lifeboat-repo --example many_snapshots -- REPO PLAN ASSET COUNT`,
//! the password in `$BENCH_PW`.

use std::io::Cursor;

use lifeboat_core::{
    ArtifactData, AssetKind, BackupInput, Payload, RepoLocation, Secret, SourceFacts,
    StreamArtifact,
};
use lifeboat_repo::{LockKind, Progress, Repo, RepoConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, plan, asset, count] = args.as_slice() else {
        anyhow::bail!("usage: many_snapshots REPO PLAN ASSET COUNT");
    };
    let count: usize = count.parse()?;
    let config = RepoConfig {
        name: "bench".to_owned(),
        location: RepoLocation::Local { path: repo.into() },
        password: Secret::new(std::env::var("BENCH_PW")?),
        s3_credentials: None,
    };
    let repo = Repo::open(&config, &Progress::hidden())?;
    let lock = repo.lock(LockKind::Shared, "bench history")?;
    for i in 0..count {
        // Sizes that wander, so the size chart has a line to draw.
        let bytes = format!("{i}\n")
            .repeat(1000 + (i * 7919) % 5000)
            .into_bytes();
        let input = BackupInput {
            plan: plan.clone(),
            asset: asset.clone(),
            kind: AssetKind::Command,
            source: "bench".to_owned(),
            reason: None,
            payload: Payload::Streams(vec![StreamArtifact {
                name: "out".to_owned(),
                data: ArtifactData::Stream(Box::new(move || {
                    Ok(Box::new(Cursor::new(bytes)) as Box<dyn std::io::Read + Send>)
                })),
            }]),
            facts: SourceFacts::default(),
        };
        repo.backup(&lock, input, None)?;
    }
    drop(lock);
    Ok(())
}
