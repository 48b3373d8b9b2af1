//! `redis` assets: an RDB taken from the running server; restored by replaying its keys into
//! the running server once a sandbox loaded from it matches the manifest, or by replacing the
//! RDB file of a stopped server.

use std::{
    fs,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use lifeboat_core::Manifest;
use lifeboat_plan::{RedisSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::{Source, SourceError, redis::RedisSource};

use super::{
    contract::{Description, Kind},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, compare_counts, compare_live, shell_checks},
    sandbox,
};

pub(super) struct Redis<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a RedisSpec,
}

impl Kind for Redis<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(redis_source(&self.asset.name, self.spec)?))
    }

    #[allow(clippy::too_many_lines)]
    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        let (asset, spec) = (self.asset, self.spec);
        let (repo, snap, req) = (job.repo, job.snap, job.req);
        let in_place = job.in_place();
        let (manifest, artifact) = job.streamed()?;
        let mut target_spec = spec.clone();
        if let Some(to) = &req.to {
            target_spec.url = lifeboat_core::Redacted::new(&to.to_string_lossy());
        }
        let target = redis_source(&asset.name, &target_spec)?;
        if in_place
            && let Some(dir) = &spec.data_dir
            && !reachable(&target.host, target.port)
        {
            // The server is stopped: its RDB file is replaced, to be loaded at start.
            let path = dir.join(lifeboat_sources::redis::RDB_NAME);
            job.plan(RestoreAction::ReplacePath { path: path.clone() });
            if req.dry_run {
                return Ok(());
            }
            let (bytes, kept) = replace_rdb_file(repo, snap, &manifest, &artifact, &path)?;
            job.report.bytes = bytes;
            job.report.kept = kept;
            return Ok(());
        }
        if !reachable(&target.host, target.port) {
            let hint = if in_place {
                format!(
                    "start the server and restore again (the keys are written into the running server), or set data-dir in [assets.{}] so that Lifeboat replaces its RDB file while it is stopped",
                    asset.name
                )
            } else {
                "start the server named in --to, or give another with --to redis://host:port/db"
                    .to_owned()
            };
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: the Redis server at {}:{} does not answer",
                    asset.name, target.host, target.port
                ),
                Some(&hint),
            ));
        }
        let safety = in_place && !req.skip_safety_snapshot;
        if safety {
            job.plan_safety_copy();
        }
        job.plan(RestoreAction::ReplayKeys {
            target: target_spec.url.to_string(),
        });
        if req.dry_run {
            return Ok(());
        }
        // The RDB, checked against its checksum, loaded into a sandbox whose key counts
        // must match the manifest before a key reaches the target.
        let rdb = tempfile::Builder::new()
            .prefix(".lifeboat-rdb-")
            .tempfile()
            .map_err(|e| EngineError::io("create", std::env::temp_dir(), e))?;
        let (mut file, rdb_path) = rdb.into_parts();
        repo.dump_artifact(snap, &manifest, &artifact, &mut file)?;
        drop(file);
        let sandbox = sandbox::RedisSandbox::start(Some(&rdb_path))
            .map_err(|e| EngineError::usage(e.to_string(), None))?;
        let mut probe =
            lifeboat_sources::resp::Client::connect("127.0.0.1", sandbox.port(), None, None)
                .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
        let keys = probe
            .keyspace()
            .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
        drop(probe);
        if !manifest.keys.is_empty() && keys != manifest.keys {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: the snapshot's RDB holds {keys:?} keys, its manifest says {:?}",
                    asset.name, manifest.keys
                ),
                None,
            ));
        }
        if safety {
            // A server that answers but cannot save: its data directory's files.
            let raw: Vec<PathBuf> = spec
                .data_dir
                .iter()
                .flat_map(|dir| {
                    [
                        lifeboat_sources::redis::RDB_NAME,
                        "appendonlydir",
                        "appendonly.aof",
                    ]
                    .map(|name| dir.join(name))
                })
                .collect();
            job.safety_copy(&raw, None)?;
        }
        job.report.keys = Some(target.replay_from(sandbox.port())?);
        Ok(())
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let mut found = Found {
            bytes: job.fetch()?,
            ..Found::default()
        };
        let rdb = job.only_artifact()?;
        let redis = sandbox::RedisSandbox::start(Some(&rdb)).map_err(|e| e.to_string())?;
        job.loaded();
        let keys = lifeboat_sources::resp::Client::connect("127.0.0.1", redis.port(), None, None)
            .and_then(|mut c| c.keyspace())
            .map_err(|e| format!("read the sandbox: {e}"))?;
        found.compared = Some(compare_counts("databases", &keys, &job.manifest.keys)?);
        found.checks = shell_checks(
            &self.asset.checks,
            job.work,
            &[
                ("REDIS_URL", redis.url()),
                ("LIFEBOAT_SANDBOX_URL", redis.url()),
            ],
        );
        job.verified();
        Ok(found)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let (asset, spec) = (self.asset, self.spec);
        let fail = |e: String| EngineError::usage(format!("check asset {}: {e}", asset.name), None);
        let mut out = LiveCheck::default();
        let target = redis_source(&asset.name, spec)?;
        let mut client = lifeboat_sources::resp::Client::connect(
            &target.host,
            target.port,
            target.username.as_deref(),
            target.password.as_ref().map(lifeboat_core::Secret::expose),
        )
        .map_err(|e| fail(format!("connect to Redis {}: {e}", spec.url)))?;
        let keys = client
            .keyspace()
            .map_err(|e| fail(format!("read Redis {}: {e}", spec.url)))?;
        if let Some(m) = manifest {
            compare_live("databases", &keys, &m.keys, true, &mut out);
        }
        // The URL without its password; a password reaches redis-cli by REDISCLI_AUTH.
        let mut env = vec![("REDIS_URL", spec.url.to_string())];
        if let Some(pw) = &target.password {
            env.push(("REDISCLI_AUTH", pw.expose().to_owned()));
        }
        out.checks = shell_checks(&asset.checks, base, &env);
        Ok(out)
    }

    fn describe(&self) -> Description {
        Description {
            location: self.spec.url.to_string(),
            secrets: self.spec.password.iter().cloned().collect(),
            by_hand: format!(
                "stop redis-server, copy DIR/{}/data/dump.rdb into its data directory (move any append-only file aside), start it",
                self.asset.name
            ),
        }
    }
}

/// The Redis server an asset names, with its password read and a sandbox to count the keys of
/// each RDB it takes.
fn redis_source(name: &str, spec: &lifeboat_plan::RedisSpec) -> Result<RedisSource, SourceError> {
    let fail = |reason: String| SourceError::Command {
        asset: name.to_owned(),
        what: "Redis",
        reason,
    };
    let url = url::Url::parse(spec.url.expose()).map_err(|e| fail(format!("{}: {e}", spec.url)))?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(6379);
    let username = spec
        .username
        .clone()
        .or_else(|| (!url.username().is_empty()).then(|| url.username().to_owned()));
    let password = spec
        .password
        .as_ref()
        .map(crate::secrets::read_secret)
        .transpose()
        .map_err(|reason| fail(format!("read the password: {reason}")))?;
    let count_keys: lifeboat_sources::redis::KeyCounter =
        std::sync::Arc::new(|rdb: &std::path::Path| {
            let sandbox = sandbox::RedisSandbox::start(Some(rdb)).map_err(|e| e.to_string())?;
            let mut c =
                lifeboat_sources::resp::Client::connect("127.0.0.1", sandbox.port(), None, None)
                    .map_err(|e| e.to_string())?;
            c.keyspace().map_err(|e| e.to_string())
        });
    Ok(RedisSource {
        asset: name.to_owned(),
        host,
        port,
        username,
        password,
        count_keys: Some(count_keys),
    })
}

/// Whether something listens at `host:port` (a two-second try).
fn reachable(host: &str, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        })
    })
}

/// Replaces a stopped Redis server's RDB file: the artifact is written beside it, loaded in a
/// sandbox whose keys must match the manifest, given the old file's owner and mode, and renamed
/// over it; the old file stays beside as `dump.rdb.lifeboat-old-<time>`. Refused when the data
/// directory holds an append-only file, which the server would load instead.
fn replace_rdb_file(
    repo: &Repo,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    artifact: &str,
    path: &Path,
) -> Result<(u64, Option<PathBuf>), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().unwrap_or_else(|| Path::new("/"));
    if dir.join("appendonlydir").exists() || dir.join("appendonly.aof").exists() {
        return Err(EngineError::usage(
            format!(
                "restore asset {}: {} holds an append-only file, which Redis loads instead of the RDB",
                manifest.asset,
                dir.display()
            ),
            Some("start the server and restore into it, or move the append-only file aside first"),
        ));
    }
    let suffix: u32 = rand::random();
    let tmp = dir.join(format!(".lifeboat-rdb-{suffix:08x}.tmp"));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(|e| EngineError::io("create", &tmp, e))?;
        let bytes = repo.dump_artifact(snap, manifest, artifact, &mut file)?;
        file.sync_all()
            .map_err(|e| EngineError::io("write", &tmp, e))?;
        drop(file);
        let sandbox = sandbox::RedisSandbox::start(Some(&tmp))
            .map_err(|e| EngineError::usage(e.to_string(), None))?;
        let keys = lifeboat_sources::resp::Client::connect("127.0.0.1", sandbox.port(), None, None)
            .and_then(|mut c| c.keyspace())
            .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
        drop(sandbox);
        if !manifest.keys.is_empty() && keys != manifest.keys {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: the snapshot's RDB holds {keys:?} keys, its manifest says {:?}",
                    manifest.asset, manifest.keys
                ),
                None,
            ));
        }
        let mut kept = None;
        if let Ok(old) = fs::metadata(path) {
            let _ = std::os::unix::fs::chown(&tmp, Some(old.uid()), Some(old.gid()));
            let _ = fs::set_permissions(&tmp, old.permissions());
            let aside = dir.join(format!(
                "{}.lifeboat-old-{}",
                lifeboat_sources::redis::RDB_NAME,
                Timestamp::now().as_second()
            ));
            fs::hard_link(path, &aside).map_err(|e| EngineError::io("keep", &aside, e))?;
            kept = Some(aside);
        }
        fs::rename(&tmp, path).map_err(|e| EngineError::io("move into place", path, e))?;
        Ok((bytes, kept))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
