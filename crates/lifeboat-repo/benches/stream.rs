//! The streaming path of a backup and the checksums behind the manifest, measured without a
//! source in front: `cargo bench -p lifeboat-repo` (or `--bench stream -- backup` for one group).
//!
//! - `backup`: a stream of 64 MiB through `Repo::backup` into a local repository: chunked
//!   and hashed as it is read, compressed, encrypted and packed on the blob workers, the
//!   manifest written last. Once with a database dump's kind of data (text rows,
//!   compressible about 6:1) and once incompressible. Every iteration sends new bytes, so
//!   nothing is deduplicated away.
//! - `verify`: the same artifact read back from the repository and checked against the
//!   manifest's SHA-256 (what `dump`, `restore` and `verify --read-data` do).
//! - `sha256`: SHA-256 alone over the same bytes, the ceiling for the checksum parts above.

use std::{hint::black_box, io::Read, path::Path, time::Duration};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lifeboat_core::{
    ArtifactData, AssetKind, BackupInput, Payload, RepoLocation, Secret, SourceFacts,
    StreamArtifact,
};
use lifeboat_repo::{LockKind, Progress, Repo, RepoConfig};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};

const SIZE: usize = 64 << 20;

/// Rows like a pgbench dump: a number, two small numbers and a blank-padded filler column.
fn dump_like(seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(SIZE + 128);
    let mut id = 0u64;
    while out.len() < SIZE {
        id += 1;
        let line = format!(
            "{id}\t{}\t{}\t{:<84}\n",
            rng.random_range(1..=50),
            rng.random_range(-5000..5000),
            if rng.random_bool(0.1) { "updated" } else { "" }
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(SIZE);
    out
}

fn random(seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; SIZE];
    StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

fn repo(dir: &Path) -> Repo {
    let config = RepoConfig {
        name: "bench".into(),
        location: RepoLocation::Local {
            path: dir.join("repo"),
        },
        password: Secret::new("bench".into()),
        s3_credentials: None,
    };
    Repo::init(&config, &Progress::hidden()).expect("init a local repository")
}

fn input(bytes: Vec<u8>) -> BackupInput {
    BackupInput {
        plan: "bench".into(),
        asset: "db".into(),
        kind: AssetKind::Command,
        source: "bench".into(),
        reason: None,
        payload: Payload::Streams(vec![StreamArtifact {
            name: "db.dump".into(),
            data: ArtifactData::Stream(Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn Read + Send>)
            })),
        }]),
        facts: SourceFacts::default(),
    }
}

fn backup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let lock = repo.lock(LockKind::Shared, "bench").unwrap();
    let mut group = c.benchmark_group("backup");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(SIZE as u64));
    let mut seed = 0;
    for (name, make) in [
        ("dump_like_64MiB", dump_like as fn(u64) -> Vec<u8>),
        ("random_64MiB", random),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    seed += 1;
                    input(make(seed))
                },
                |input| repo.backup(&lock, input, None).expect("backup"),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo(dir.path());
    let lock = repo.lock(LockKind::Shared, "bench").unwrap();
    let outcome = repo.backup(&lock, input(dump_like(1)), None).unwrap();
    drop(lock);
    let reader = repo.reader().unwrap();
    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("dump_like_64MiB", |b| {
        b.iter(|| {
            reader
                .verify_artifact(&outcome.snapshot, &outcome.manifest, "db.dump")
                .expect("checksum matches")
        });
    });
    group.finish();
}

fn sha256(c: &mut Criterion) {
    let data = dump_like(1);
    let mut group = c.benchmark_group("sha256");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("64MiB", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&data))));
    });
    group.finish();
}

criterion_group!(benches, backup, verify, sha256);
criterion_main!(benches);
