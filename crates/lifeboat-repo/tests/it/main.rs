//! Repository operations against a real S3-compatible server, called the way the daemon will:
//! from async code, through `lifeboat_repo::blocking`.

use std::io::Read;

use lifeboat_core::{
    ArtifactData, AssetKind, BackupInput, Payload, RepoLocation, S3Location, Secret, SourceFacts,
    StreamArtifact,
};
use lifeboat_repo::{LockKind, Progress, Repo, RepoConfig, RepoError, blocking};
use lifeboat_testing::MotoServer;

fn s3_config(moto: &MotoServer, bucket: &str) -> RepoConfig {
    RepoConfig {
        name: "offsite".into(),
        location: RepoLocation::S3(S3Location {
            bucket: bucket.into(),
            prefix: "lifeboat".into(),
            endpoint: Some(moto.endpoint()),
            region: Some("us-east-1".into()),
            path_style: true,
            storage_class: None,
            timeout: None,
            object_lock: None,
        }),
        password: Secret::new("correct horse".into()),
        s3_credentials: Some((Secret::new("test".into()), Secret::new("test".into()))),
    }
}

fn stream_input(bytes: Vec<u8>) -> BackupInput {
    BackupInput {
        plan: "p".into(),
        asset: "vault".into(),
        kind: AssetKind::Command,
        source: "command test".into(),
        reason: None,
        payload: Payload::Streams(vec![StreamArtifact {
            name: "vault.snap".into(),
            data: ArtifactData::Stream(Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn Read + Send>)
            })),
        }]),
        facts: SourceFacts::default(),
    }
}

/// rustic's S3 backend runs its own tokio runtime and panics when entered from an async task;
/// through `blocking` every operation works from inside a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_repository_from_async_code() {
    let moto = MotoServer::start().expect("moto_server");
    moto.create_bucket("dr-copies").unwrap();
    let config = s3_config(&moto, "dr-copies");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();

    let (manifest, dumped) = blocking(move || {
        let repo = Repo::init(&config, &Progress::hidden())?;
        let lock = repo.lock(LockKind::Shared, "backup vault")?;
        assert_eq!(repo.locks()?.len(), 1, "the lock is a file in the bucket");
        let outcome = repo.backup(&lock, stream_input(payload), None)?;
        drop(lock);
        assert!(repo.locks()?.is_empty(), "the lock is removed when dropped");
        let snap = repo.find_snapshot("vault", None)?;
        let mut out = Vec::new();
        repo.dump_artifact(&snap, &outcome.manifest, "vault.snap", &mut out)?;
        Ok::<_, RepoError>((outcome.manifest, out))
    })
    .await
    .expect("backup and dump through blocking()");
    assert_eq!(dumped, expected);
    assert_eq!(manifest.artifacts[0].size, 3_000_000);

    let keys = moto.list_keys("dr-copies", "lifeboat/").unwrap();
    assert!(
        keys.iter().any(|k| k.starts_with("lifeboat/snapshots/")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("lifeboat/data/")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_missing_repository_on_s3() {
    let moto = MotoServer::start().expect("moto_server");
    moto.create_bucket("dr-copies").unwrap();
    let config = s3_config(&moto, "dr-copies");
    let missing = blocking({
        let config = config.clone();
        move || Repo::open(&config, &Progress::hidden()).map(drop)
    })
    .await;
    assert!(
        matches!(missing, Err(RepoError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(missing.unwrap_err().exit_code(), 10);

    blocking({
        let config = config.clone();
        move || Repo::init(&config, &Progress::hidden()).map(drop)
    })
    .await
    .unwrap();
    let mut wrong = config;
    wrong.password = Secret::new("hunter2-not-it".into());
    let err = blocking(move || Repo::open(&wrong, &Progress::hidden()).map(drop))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 12, "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

mod restore;
