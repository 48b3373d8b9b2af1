//! Copies an attacker cannot delete: S3 buckets with Object Lock. Lifeboat proves a bucket
//! locks what it writes before it copies into it, and after someone deleted objects with
//! the keys (which in a versioned bucket only hides them behind delete markers) puts the
//! repository back by removing those markers.

use std::time::Duration;

use jiff::Timestamp;
use lifeboat_core::RepoLocation;
use opendal::options::{DeleteOptions, ListOptions};

use crate::{
    config::RepoConfig,
    error::{RepoError, RepoResult},
    repository::Repo,
};

/// The object each proof writes, beside the repository's own directories (restic reads none
/// but its own).
const PROBE: &str = "lifeboat-lock-probe";

/// What `undelete` put back.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Undeleted {
    /// Objects visible again, by the repository directory they are in (`snapshots`, `data`…).
    pub restored: std::collections::BTreeMap<String, usize>,
    /// Lock files deleted after `since`, left deleted: a lock brought back would only be stale.
    pub locks_left: usize,
}

impl Repo {
    /// How long the bucket keeps every object version (`object-lock`), if it locks them.
    #[must_use]
    pub fn object_lock(&self) -> Option<Duration> {
        match &self.config.location {
            RepoLocation::S3(s3) => s3.object_lock,
            RepoLocation::Local { .. } => None,
        }
    }

    /// As [`RepoConfig::prove_locked`].
    pub fn prove_locked(&self) -> RepoResult<()> {
        self.config.prove_locked()
    }
}

impl RepoConfig {
    fn s3_op(&self, action: &str) -> RepoResult<opendal::blocking::Operator> {
        match &self.location {
            RepoLocation::S3(s3) => self.s3_operator(s3, false),
            RepoLocation::Local { path } => Err(RepoError::Backend {
                action: action.to_owned(),
                name: self.name.clone(),
                detail: format!(
                    "{} is a directory: only S3 buckets keep object versions",
                    path.display()
                ),
            }),
        }
    }

    /// Proves that the bucket locks what is written: writes a small object and tries to
    /// delete that very version, which must be refused. A bucket without Object Lock (or
    /// with a default retention of none) lets it go, and this says so.
    pub fn prove_locked(&self) -> RepoResult<()> {
        let op = self.s3_op("prove Object Lock")?;
        let fail = |detail: String| RepoError::Backend {
            action: "prove Object Lock".to_owned(),
            name: self.name.clone(),
            detail,
        };
        op.write(PROBE, format!("written {}\n", Timestamp::now()))
            .map_err(|e| fail(format!("write {PROBE}: {e}")))?;
        let meta = op
            .stat(PROBE)
            .map_err(|e| fail(format!("read {PROBE} back: {e}")))?;
        let Some(version) = meta.version().map(str::to_owned) else {
            return Err(RepoError::NotImmutable {
                name: self.name.clone(),
                detail: "the bucket keeps no object versions, so it cannot lock them".to_owned(),
            });
        };
        let deleted = op.delete_options(
            PROBE,
            DeleteOptions {
                version: Some(version),
                ..DeleteOptions::default()
            },
        );
        match deleted {
            Err(e) if e.kind() == opendal::ErrorKind::PermissionDenied => Ok(()),
            Err(e) => Err(fail(format!("delete a version of {PROBE}: {e}"))),
            Ok(()) => Err(RepoError::NotImmutable {
                name: self.name.clone(),
                detail: "a version of an object it had just written could be deleted".to_owned(),
            }),
        }
    }

    /// Removes the delete markers placed since `since` over the repository's objects, so that
    /// what was deleted (by an attacker with the keys, or a mistaken `aws s3 rm`) is visible
    /// again. Lock files stay deleted. Needs a versioned bucket (Object Lock implies one), and
    /// no open repository: its config file may be among what was deleted.
    pub fn undelete(&self, since: Timestamp) -> RepoResult<Undeleted> {
        let op = self.s3_op("undelete")?;
        let fail = |detail: String| RepoError::Backend {
            action: "undelete".to_owned(),
            name: self.name.clone(),
            detail,
        };
        let entries = op
            .list_options(
                "",
                ListOptions {
                    recursive: true,
                    versions: true,
                    deleted: true,
                    ..ListOptions::default()
                },
            )
            .map_err(|e| fail(format!("list object versions: {e}")))?;
        let mut out = Undeleted::default();
        for entry in entries {
            let meta = entry.metadata();
            let current = meta.is_current().unwrap_or(false);
            let recent = meta
                .last_modified()
                .is_some_and(|t| t.into_inner() >= since);
            if !(meta.is_deleted() && current && recent) {
                continue;
            }
            let path = entry.path();
            let dir = path.split('/').next().unwrap_or_default().to_owned();
            if dir == "locks" {
                out.locks_left += 1;
                continue;
            }
            let Some(version) = meta.version().map(str::to_owned) else {
                continue;
            };
            op.delete_options(
                path,
                DeleteOptions {
                    version: Some(version),
                    ..DeleteOptions::default()
                },
            )
            .map_err(|e| fail(format!("remove the delete marker of {path}: {e}")))?;
            *out.restored.entry(dir).or_default() += 1;
        }
        Ok(out)
    }
}
