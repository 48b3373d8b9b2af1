//! Copies for 3-2-1: snapshots copied between the plan's repositories, and how far each copy
//! lags behind the repository it copies.

use jiff::Timestamp;
use lifeboat_plan::ResolvedRepository;
use lifeboat_repo::{LockKind, Repo, SnapshotInfo};
use serde::Serialize;

use crate::{EngineError, engine::Engine};

/// Snapshots copied into one repository.
#[derive(Debug, Serialize)]
pub struct CopyOutcome {
    pub repository: String,
    pub from: String,
    pub copied: usize,
    pub error: Option<String>,
    pub hint: Option<String>,
}

impl CopyOutcome {
    fn of(from: &str, to: &str, result: Result<usize, EngineError>) -> Self {
        match result {
            Ok(copied) => Self {
                repository: to.to_owned(),
                from: from.to_owned(),
                copied,
                error: None,
                hint: None,
            },
            Err(e) => Self {
                repository: to.to_owned(),
                from: from.to_owned(),
                copied: 0,
                hint: e.hint(),
                error: Some(e.to_string()),
            },
        }
    }
}

/// An asset's newest snapshot in a copy, against the repository it copies.
#[derive(Debug, Clone, Serialize)]
pub struct CopyStatus {
    pub repository: String,
    pub from: String,
    pub last_snapshot: Option<String>,
    pub last_time: Option<Timestamp>,
    /// How much older the copy's newest snapshot is than the source's; `None` when the copy
    /// has none of this asset.
    pub lag_secs: Option<u64>,
    /// The lag exceeds the asset's RPO, the copy has no snapshot of an asset that has one,
    /// or the copy cannot be read.
    pub breach: bool,
    pub error: Option<String>,
    /// The copy's own retention, when it has one; else the asset's rules apply there too.
    pub retention: Option<String>,
    /// Days its bucket keeps every object version (`object-lock`): an immutable copy.
    pub object_lock_days: Option<u64>,
}

impl Engine {
    /// Copies every snapshot of `from` that `to` lacks (by hand: `lifeboat copy`).
    ///
    /// # Errors
    /// Unknown repositories, the same repository twice, or either cannot be opened or written.
    pub fn copy(&self, from: &str, to: &str) -> Result<CopyOutcome, EngineError> {
        if from == to {
            return Err(EngineError::usage(
                format!("copy repository {from} into itself"),
                Some("name two different repositories with --from and --to"),
            ));
        }
        let source = self.open_repository(from)?;
        self.repository(to)?;
        let result = self
            .open_repository(to)
            .and_then(|target| copy_between(&source, &target));
        let outcome = CopyOutcome::of(from, to, result);
        if let Some(e) = &outcome.error {
            tracing::debug!("copy {from} → {to}: {e}");
        }
        Ok(outcome)
    }

    /// Brings every repository that copies the primary (directly or through another copy) up
    /// to date, as a backup does at its end.
    ///
    /// # Errors
    /// When the primary cannot be opened, or no repository copies it.
    pub fn copy_all(&self) -> Result<Vec<CopyOutcome>, EngineError> {
        let primary = self.open_primary()?;
        let outcomes = self.copy_onward(&primary);
        if outcomes.is_empty() {
            return Err(EngineError::usage(
                format!("no repository of the plan copies {}", primary.name()),
                Some(
                    "add copy-from = \"NAME\" to a repository, or name them: lifeboat copy --from A --to B",
                ),
            ));
        }
        Ok(outcomes)
    }

    /// Removes stale locks from the primary (every lock with `all`); returns what was removed.
    ///
    /// # Errors
    /// When the repository cannot be opened or its locks not removed.
    pub fn unlock(&self, all: bool) -> Result<Vec<lifeboat_repo::LockInfo>, EngineError> {
        Ok(self.open_primary()?.unlock(all)?)
    }

    /// After a backup into `source`: brings every repository with `copy-from` naming it up to
    /// date, then the ones copying those, and so on. A copy that fails is reported and does
    /// not stop the others.
    pub(crate) fn copy_onward(&self, source: &Repo) -> Vec<CopyOutcome> {
        let mut outcomes = Vec::new();
        let mut queue = vec![source.name().to_owned()];
        let mut done = vec![source.name().to_owned()];
        while let Some(from) = queue.pop() {
            let targets: Vec<&ResolvedRepository> = self
                .plan()
                .repositories
                .iter()
                .filter(|r| r.copy_from.as_deref() == Some(&from) && !done.contains(&r.name))
                .collect();
            for target in targets {
                done.push(target.name.clone());
                let result = if from == source.name() {
                    self.open_repository(&target.name)
                        .and_then(|t| copy_between(source, &t))
                } else {
                    self.open_repository(&from).and_then(|s| {
                        self.open_repository(&target.name)
                            .and_then(|t| copy_between(&s, &t))
                    })
                };
                let outcome = CopyOutcome::of(&from, &target.name, result);
                if outcome.error.is_none() {
                    queue.push(target.name.clone());
                }
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    /// Per copy repository: each asset's newest snapshot there and its lag behind the
    /// repository it copies. `primary` holds the primary's snapshots, already listed.
    pub(crate) fn copy_status(
        &self,
        asset: &str,
        rpo_secs: u64,
        primary_name: &str,
        listed: &[(String, Result<Vec<SnapshotInfo>, String>)],
    ) -> Vec<CopyStatus> {
        let newest = |snaps: &[SnapshotInfo]| {
            snaps
                .iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
                .cloned()
        };
        let of = |name: &str| listed.iter().find(|(n, _)| n == name).map(|(_, r)| r);
        self.plan()
            .repositories
            .iter()
            .filter(|r| r.name != primary_name)
            .filter_map(|r| Some((r, r.copy_from.as_deref()?)))
            .map(|(r, from)| {
                let source_newest = of(from)
                    .and_then(|l| l.as_ref().ok())
                    .and_then(|l| newest(l));
                match of(&r.name) {
                    Some(Ok(snaps)) => {
                        let mine = newest(snaps);
                        let lag = match (&mine, &source_newest) {
                            (Some(m), Some(s)) => Some(
                                u64::try_from(s.time.as_second() - m.time.as_second()).unwrap_or(0),
                            ),
                            (Some(_), None) => Some(0),
                            (None, _) => None,
                        };
                        CopyStatus {
                            repository: r.name.clone(),
                            from: from.to_owned(),
                            last_snapshot: mine.as_ref().map(|s| s.short_id.clone()),
                            last_time: mine.as_ref().map(|s| s.time),
                            lag_secs: lag,
                            breach: match lag {
                                Some(l) => l > rpo_secs,
                                None => source_newest.is_some(),
                            },
                            error: None,
                            retention: r.retention.as_ref().map(ToString::to_string),
                            object_lock_days: lock_days(r),
                        }
                    }
                    unreadable => CopyStatus {
                        retention: r.retention.as_ref().map(ToString::to_string),
                        object_lock_days: lock_days(r),
                        repository: r.name.clone(),
                        from: from.to_owned(),
                        last_snapshot: None,
                        last_time: None,
                        lag_secs: None,
                        breach: true,
                        error: Some(match unreadable {
                            Some(Err(e)) => e.clone(),
                            _ => "not listed".to_owned(),
                        }),
                    },
                }
            })
            .collect()
    }

    /// Snapshots of every repository other than `primary_name`, each read once for status.
    pub(crate) fn list_copies(
        &self,
        primary_name: &str,
    ) -> Vec<(String, Result<Vec<SnapshotInfo>, String>)> {
        self.plan()
            .repositories
            .iter()
            .filter(|r| r.name != primary_name && r.copy_from.is_some())
            .map(|r| {
                let listed = self
                    .open_repository(&r.name)
                    .and_then(|repo| Ok(repo.snapshots()?))
                    .map_err(|e| e.to_string());
                (r.name.clone(), listed)
            })
            .collect()
    }
}

fn lock_days(r: &lifeboat_plan::ResolvedRepository) -> Option<u64> {
    r.object_lock().map(|d| d.as_secs() / 86_400)
}

/// Copies the snapshots of `from` that `to` lacks, under shared locks of both. Into a copy
/// with `object-lock`, only once this process has seen its bucket refuse to delete a version
/// of what it just wrote: a copy believed immutable that is not is worse than none.
fn copy_between(from: &Repo, to: &Repo) -> Result<usize, EngineError> {
    static PROVEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if to.object_lock().is_some() {
        let mut proven = PROVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !proven.contains(&to.location()) {
            to.prove_locked()?;
            proven.push(to.location());
        }
    }
    let from_lock = from.lock(LockKind::Shared, &format!("copy to {}", to.name()))?;
    let to_lock = to.lock(LockKind::Shared, &format!("copy from {}", from.name()))?;
    if !from.same_chunker(to) {
        tracing::warn!(
            "repository {} chunks data differently from {}: copies are not deduplicated",
            to.name(),
            from.name()
        );
    }
    let snaps = from.snapshots()?;
    let copied = from.copy_to(&from_lock, to, &to_lock, &snaps)?;
    tracing::info!(
        "copied {copied} snapshot(s) from {} to {}",
        from.name(),
        to.name()
    );
    Ok(copied)
}
