//! Proving recoverability: restore a snapshot into a sandbox Lifeboat starts itself, compare
//! it with the manifest, run the plan's checks, and time each phase (`verify --restore`,
//! `drill`). Nothing here touches a live target.

use std::time::Instant;

use jiff::Timestamp;
use lifeboat_plan::ResolvedAsset;
use lifeboat_repo::{Repo, SnapshotInfo};
use serde::Serialize;

use crate::{
    EngineError,
    engine::Engine,
    kinds::{SandboxJob, kind_for},
    proof::{CheckOutcome, Clock, Phases},
};

/// One asset restored into a sandbox and checked.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SandboxRestore {
    pub asset: String,
    pub kind: lifeboat_core::AssetKind,
    pub priority: lifeboat_core::Priority,
    pub snapshot: Option<String>,
    pub snapshot_time: Option<Timestamp>,
    pub phases: Phases,
    /// Wall time from the start of the fetch to a verified, usable copy (achieved RTO).
    pub rto_secs: f64,
    pub rto_target_secs: u64,
    /// Age of the restored data when the drill ran (achieved RPO).
    pub rpo_secs: Option<u64>,
    pub rpo_target_secs: u64,
    pub bytes: u64,
    /// What was compared with the manifest, e.g. `12 tables, 5000 rows as recorded`.
    pub compared: Option<String>,
    pub checks: Vec<CheckOutcome>,
    /// What went wrong; empty when the restore and every check succeeded.
    pub problems: Vec<String>,
    pub ok: bool,
    /// The targets missed by a restore that worked: `RTO target missed`, `RPO target missed`.
    #[serde(default)]
    pub missed: Vec<String>,
}

impl SandboxRestore {
    #[must_use]
    pub fn rto_met(&self) -> bool {
        self.rto_secs <= self.rto_target_secs as f64
    }

    #[must_use]
    pub fn rpo_met(&self) -> bool {
        self.rpo_secs.is_some_and(|a| a <= self.rpo_target_secs)
    }

    /// The targets a restore that worked missed, as every report format names them.
    #[must_use]
    pub fn missed_targets(&self) -> Vec<String> {
        if !self.ok {
            return Vec::new();
        }
        let mut missed = Vec::new();
        if !self.rto_met() {
            missed.push("RTO target missed".to_owned());
        }
        if !self.rpo_met() {
            missed.push("RPO target missed".to_owned());
        }
        missed
    }
}

impl Engine {
    /// Restores the newest snapshot (or `snapshot`) of each asset into a sandbox and checks
    /// it. `assets` empty means all, in priority order. A failure is recorded for its asset;
    /// the others still run.
    ///
    /// # Errors
    /// An unknown asset, or a repository that cannot be opened.
    pub fn verify_restore(
        &self,
        assets: &[String],
        snapshot: Option<&str>,
        parallel: usize,
    ) -> Result<Vec<SandboxRestore>, EngineError> {
        let mut chosen: Vec<&ResolvedAsset> = if assets.is_empty() {
            self.plan().assets.iter().collect()
        } else {
            assets
                .iter()
                .map(|a| self.asset(a))
                .collect::<Result<_, _>>()?
        };
        if snapshot.is_some() && chosen.len() != 1 {
            return Err(EngineError::usage(
                "--snapshot names one snapshot: give exactly one asset",
                Some("lifeboat verify --restore ASSET --snapshot ID"),
            ));
        }
        chosen.sort_by_key(|a| a.priority);
        let repo = self.open_primary()?;
        let _lock = repo.lock(lifeboat_repo::LockKind::Shared, "verify --restore")?;
        let snapshots = repo.snapshots()?;
        let run_one = |asset: &ResolvedAsset| {
            let snap = match snapshot {
                Some(id) => repo
                    .find_snapshot(&asset.name, Some(id))
                    .map(Some)
                    .map_err(|e| e.to_string()),
                None => Ok(snapshots
                    .iter()
                    .rev()
                    .find(|s| s.asset.as_deref() == Some(&asset.name) && !s.is_safety())
                    .cloned()),
            };
            sandbox_restore(&repo, asset, snap)
        };
        let workers = parallel.clamp(1, chosen.len().max(1));
        if workers == 1 {
            return Ok(chosen.iter().map(|a| run_one(a)).collect());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(asset) = chosen.get(i) else { break };
                        let r = run_one(asset);
                        results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((i, r));
                    }
                });
            }
        });
        let mut results = results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        results.sort_by_key(|(i, _)| *i);
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }
}

pub(crate) fn sandbox_restore(
    repo: &Repo,
    asset: &ResolvedAsset,
    snap: Result<Option<SnapshotInfo>, String>,
) -> SandboxRestore {
    let (snap, lookup) = match snap {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
    };
    let snap = snap.as_ref();
    let mut out = SandboxRestore {
        asset: asset.name.clone(),
        kind: asset.kind(),
        priority: asset.priority,
        snapshot: snap.map(|s| s.short_id.clone()),
        snapshot_time: snap.map(|s| s.time),
        phases: Phases::default(),
        rto_secs: 0.0,
        rto_target_secs: asset.rto.as_secs(),
        rpo_secs: snap
            .map(|s| u64::try_from(Timestamp::now().as_second() - s.time.as_second()).unwrap_or(0)),
        rpo_target_secs: asset.rpo.as_secs(),
        bytes: 0,
        compared: None,
        checks: Vec::new(),
        problems: Vec::new(),
        ok: false,
        missed: Vec::new(),
    };
    let Some(snap) = snap else {
        out.problems.push(
            lookup
                .unwrap_or_else(|| format!("asset {} has no snapshot to restore yet", asset.name)),
        );
        return out;
    };
    let started = Instant::now();
    let clock = Clock::from(started);
    let result = repo
        .read_manifest(snap)
        .map_err(|e| e.to_string())
        .and_then(|manifest| {
            let work = tempfile::Builder::new()
                .prefix(".lifeboat-drill-")
                .tempdir_in(lifeboat_core::spool_dir())
                .map_err(|e| format!("create a work directory: {e}"))?;
            let mut job = SandboxJob {
                repo,
                snap,
                manifest: &manifest,
                work: work.path(),
                clock,
                phases: Phases::default(),
            };
            let found = kind_for(asset).sandbox(&mut job);
            out.phases = job.phases;
            found
        });
    out.rto_secs = started.elapsed().as_secs_f64();
    match result {
        Ok(found) => {
            if let Some(t) = found.reached {
                out.rpo_secs =
                    Some(u64::try_from(Timestamp::now().as_second() - t.as_second()).unwrap_or(0));
            }
            out.bytes = found.bytes;
            out.compared = found.compared;
            for c in found.checks.iter().filter(|c| !c.ok) {
                out.problems
                    .push(format!("check failed: {} ({})", c.check, c.output));
            }
            out.checks = found.checks;
        }
        Err(e) => out.problems.push(e),
    }
    out.ok = out.problems.is_empty();
    out.missed = out.missed_targets();
    out
}
