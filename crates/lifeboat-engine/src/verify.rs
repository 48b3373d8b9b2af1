//! `verify`: is the repository whole, does every artifact still match its checksum, and is
//! each asset's newest snapshot of a believable size?
//!
//! rustic's check covers the repository; what it finds in a pack is traced to the snapshots
//! that use the pack (only then are their trees walked), so every finding names the asset and
//! snapshot it takes down.

use std::{collections::BTreeMap, fmt, str::FromStr};

use lifeboat_core::{AnomalyThresholds, SizeDeviation};
use lifeboat_plan::ResolvedAsset;
use lifeboat_repo::{
    CheckReport, DamagedPack, LockKind, PackUsers, Reader, RepoError, SnapshotInfo,
};
use serde::Serialize;

use crate::{Engine, EngineError};

/// Snapshots before the newest whose sizes make the average it is judged against.
const SIZE_WINDOW: usize = 7;
/// Fewer previous snapshots than this give no average worth judging by.
const SIZE_HISTORY: usize = 2;

/// How much pack data `verify` reads and authenticates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// Every pack the examined snapshots use, and every artifact of those snapshots against
    /// its checksum.
    All,
    /// A random subset of about this percentage of the packs (more than 0, less than 100): a
    /// cheap daily run. Artifacts are not read in full.
    Percent(f64),
}

impl ReadData {
    fn percent(self) -> f64 {
        match self {
            Self::All => 100.0,
            Self::Percent(p) => p,
        }
    }
}

impl FromStr for ReadData {
    type Err = String;

    /// `N%`, more than 0 and at most 100; `100%` is [`ReadData::All`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected a percentage such as 10%, not {s:?}");
        let number = s.trim().strip_suffix('%').ok_or_else(expected)?;
        let pct: f64 = number.trim().parse().map_err(|_| expected())?;
        if !(pct.is_finite() && pct > 0.0 && pct <= 100.0) {
            return Err(format!(
                "{s} is out of range: give more than 0% and at most 100%"
            ));
        }
        Ok(if pct >= 100.0 {
            Self::All
        } else {
            Self::Percent(pct)
        })
    }
}

impl fmt::Display for ReadData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What `verify` found, and how much it looked at.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub repository: String,
    /// The assets whose snapshots were examined, in plan order.
    pub assets: Vec<String>,
    /// Snapshots of those assets whose manifest was read.
    pub snapshots_examined: usize,
    /// `all` or e.g. `10%`; `None` when no pack data was read.
    pub read_data: Option<String>,
    /// Everything wrong, errors and warnings, each naming what it affects.
    pub findings: Vec<Finding>,
    /// The messages of the findings at level error.
    pub errors: Vec<String>,
    /// The messages of the findings at level warning.
    pub warnings: Vec<String>,
    /// Artifacts read in full and matching their manifest's checksum.
    pub artifacts_verified: usize,
    /// Bytes read to verify them.
    pub artifact_bytes_read: u64,
}

impl VerifyReport {
    /// 1 when anything is wrong at level error, else 0.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if self.errors.is_empty() {
            lifeboat_core::Exit::Ok.code()
        } else {
            lifeboat_core::Exit::Error.code()
        }
    }

    fn push(&mut self, finding: Finding) {
        match finding.level {
            Level::Error => self.errors.push(finding.message.clone()),
            Level::Warning => self.warnings.push(finding.message.clone()),
        }
        self.findings.push(finding);
    }
}

/// One thing wrong. `asset` and `snapshot` (short id) name what it takes down; both are
/// `None` for the repository as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    pub kind: FindingKind,
    pub asset: Option<String>,
    pub snapshot: Option<String>,
    /// One line, naming asset, snapshot and what is wrong.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The damaged pack's full id (`pack-damaged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    /// The snapshot's size (`size-anomaly`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The average it was compared with (`size-anomaly`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Error,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The index, the pack files or a snapshot's trees do not agree.
    Structure,
    /// A pack's data is missing, unreadable or does not match its hash.
    PackDamaged,
    /// An artifact was read in full and its SHA-256 differs from the manifest's.
    ChecksumMismatch,
    /// An artifact could not be read to its end.
    ArtifactUnreadable,
    /// A snapshot's manifest is missing or unreadable.
    Manifest,
    /// The newest snapshot is much smaller or larger than the ones before it.
    SizeAnomaly,
    /// A chain the kind's restores depend on is broken: WAL segments missing from a
    /// cluster's archive after its oldest base backup.
    WalGap,
}

impl Finding {
    fn new(kind: FindingKind, snap: Option<&SnapshotInfo>, what: &str) -> Self {
        Self {
            level: Level::Error,
            kind,
            asset: snap.and_then(|s| s.asset.clone()),
            snapshot: snap.map(|s| s.short_id.clone()),
            message: match snap {
                Some(s) => format!("{}: {what}", snapshot_name(s)),
                None => what.to_owned(),
            },
            hint: None,
            pack: None,
            bytes: None,
            average_bytes: None,
        }
    }
}

/// `asset db, snapshot 3f2a91c0`, as every finding about a snapshot starts.
fn snapshot_name(s: &SnapshotInfo) -> String {
    match &s.asset {
        Some(asset) if s.is_safety() => format!("asset {asset}, safety snapshot {}", s.short_id),
        Some(asset) => format!("asset {asset}, snapshot {}", s.short_id),
        None => format!("snapshot {} (not written by Lifeboat)", s.short_id),
    }
}

impl Engine {
    /// Checks the repository (index against packs, always) and the snapshots of the named
    /// assets (all when empty): their trees, their manifests, and the newest one's size
    /// against the average of the ones before it. With `read_data`, also reads the packs
    /// those snapshots use; [`ReadData::All`] then also reads every artifact of every snapshot
    /// of the assets against its checksum.
    ///
    /// A damaged pack is traced to every examined snapshot that uses it.
    ///
    /// # Errors
    /// Unknown asset names, or the repository cannot be opened or read (findings are in the
    /// report, not errors).
    pub fn verify(
        &self,
        names: &[String],
        read_data: Option<ReadData>,
    ) -> Result<VerifyReport, EngineError> {
        let assets = self.verify_selection(names)?;
        let repo = self.open_primary()?;
        let lock = repo.lock(LockKind::Exclusive, "verify")?;
        let all = repo.snapshots()?;
        let scope: Option<Vec<SnapshotInfo>> = (!names.is_empty()).then(|| {
            all.iter()
                .filter(|s| assets.iter().any(|a| s.asset.as_deref() == Some(&a.name)))
                .cloned()
                .collect()
        });
        let check = repo.check(&lock, scope.as_deref(), read_data.map(ReadData::percent))?;
        let mut report = VerifyReport {
            repository: repo.name().to_owned(),
            assets: assets.iter().map(|a| a.name.clone()).collect(),
            snapshots_examined: 0,
            read_data: read_data.map(|r| r.to_string()),
            findings: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            artifacts_verified: 0,
            artifact_bytes_read: 0,
        };
        structure_findings(&mut report, &check);
        if !check.damaged.is_empty() {
            let walked = scope.as_deref().unwrap_or(&all);
            let unused = if names.is_empty() {
                "no snapshot uses it".to_owned()
            } else {
                format!("no snapshot of {} uses it", report.assets.join(", "))
            };
            let ids: Vec<String> = check.damaged.iter().map(|d| d.id.clone()).collect();
            let users = repo.snapshots_using(&ids, walked)?;
            let nobody = PackUsers::default();
            for pack in &check.damaged {
                let users = users.get(&pack.id).unwrap_or(&nobody);
                damage_findings(&mut report, pack, users, walked, &unused);
            }
        }

        if assets
            .iter()
            .any(|a| all.iter().any(|s| s.asset.as_deref() == Some(&a.name)))
        {
            match repo.reader() {
                Ok(reader) => {
                    for asset in &assets {
                        verify_asset(&reader, asset, &all, read_data, &mut report);
                    }
                }
                Err(e) => report.push(Finding::new(FindingKind::Structure, None, &e.to_string())),
            }
        }
        for asset in &assets {
            match crate::kinds::kind_for(asset).integrity(&repo) {
                Ok(problems) => {
                    for (message, hint) in problems {
                        let mut f = Finding::new(FindingKind::WalGap, None, &message);
                        f.asset = Some(asset.name.clone());
                        f.hint = Some(hint);
                        report.push(f);
                    }
                }
                Err(e) => report.push(Finding::new(FindingKind::Structure, None, &e.to_string())),
            }
        }
        Ok(report)
    }

    /// The assets named, in plan order, each once; all of them when `names` is empty.
    fn verify_selection(&self, names: &[String]) -> Result<Vec<&ResolvedAsset>, EngineError> {
        if let Some(unknown) = names.iter().find(|n| self.plan().asset(n).is_none()) {
            let known: Vec<&str> = self.plan().assets.iter().map(|a| a.name.as_str()).collect();
            let message = match self.plan().closest_asset(unknown) {
                Some(close) => format!("unknown asset {unknown}, did you mean {close}?"),
                None => format!("unknown asset {unknown}"),
            };
            return Err(EngineError::usage(
                message,
                Some(&format!("the plan has: {}", known.join(", "))),
            ));
        }
        Ok(self
            .plan()
            .assets
            .iter()
            .filter(|a| names.is_empty() || names.contains(&a.name))
            .collect())
    }
}

/// Manifests, checksums (with all data read) and the newest snapshot's size of one asset.
fn verify_asset(
    reader: &Reader<'_>,
    asset: &ResolvedAsset,
    all: &[SnapshotInfo],
    read_data: Option<ReadData>,
    report: &mut VerifyReport,
) {
    let own: Vec<&SnapshotInfo> = all
        .iter()
        .filter(|s| s.asset.as_deref() == Some(&asset.name))
        .collect();
    let regular: Vec<&SnapshotInfo> = own.iter().copied().filter(|s| !s.is_safety()).collect();
    let window = &regular[regular.len().saturating_sub(SIZE_WINDOW + 1)..];
    let examine: &[&SnapshotInfo] = if read_data == Some(ReadData::All) {
        &own
    } else {
        window
    };
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for &snap in examine {
        report.snapshots_examined += 1;
        let manifest = match reader.read_manifest(snap) {
            Ok(m) => m,
            Err(e) => {
                let what = match e {
                    RepoError::BadSnapshot { detail, .. } => detail,
                    other => other.to_string(),
                };
                report.push(Finding::new(FindingKind::Manifest, Some(snap), &what));
                continue;
            }
        };
        sizes.insert(&snap.id, manifest.payload_bytes());
        if read_data != Some(ReadData::All) {
            continue;
        }
        for artifact in &manifest.artifacts {
            match reader.verify_artifact(snap, &manifest, &artifact.name) {
                Ok(bytes) => {
                    report.artifacts_verified += 1;
                    report.artifact_bytes_read += bytes;
                }
                Err(RepoError::ChecksumMismatch {
                    expected, actual, ..
                }) => report.push(Finding::new(
                    FindingKind::ChecksumMismatch,
                    Some(snap),
                    &format!(
                        "artifact {}: checksum {actual} does not match the manifest's {expected}",
                        artifact.name
                    ),
                )),
                Err(RepoError::BadSnapshot { detail, .. }) => report.push(Finding::new(
                    FindingKind::ArtifactUnreadable,
                    Some(snap),
                    &format!("artifact {}: {detail}", artifact.name),
                )),
                Err(e) => {
                    // rustic's message runs to many lines; the pack finding says where.
                    tracing::info!("{e}");
                    report.push(Finding::new(
                        FindingKind::ArtifactUnreadable,
                        Some(snap),
                        &format!("artifact {} cannot be read in full", artifact.name),
                    ));
                }
            }
        }
    }
    if let Some(f) = size_anomaly(asset, window, &sizes) {
        report.push(f);
    }
}

/// One finding per examined snapshot that needs the damaged part of `pack`, or one for the
/// pack alone when none does.
fn damage_findings(
    report: &mut VerifyReport,
    pack: &DamagedPack,
    users: &PackUsers,
    walked: &[SnapshotInfo],
    unused: &str,
) {
    let what = format!("pack {}: {}", &pack.id[..8], pack.problem);
    let hit: Vec<&SnapshotInfo> = users
        .damaged
        .iter()
        .filter_map(|id| walked.iter().find(|s| &s.id == id))
        .collect();
    if hit.is_empty() {
        let whose = if users.intact.is_empty() {
            unused
        } else {
            "the data snapshots use from it still reads back intact"
        };
        let mut f = Finding::new(FindingKind::PackDamaged, None, &format!("{what}; {whose}"));
        f.pack = Some(pack.id.clone());
        report.push(f);
    }
    for snap in hit {
        let mut f = Finding::new(FindingKind::PackDamaged, Some(snap), &what);
        f.pack = Some(pack.id.clone());
        report.push(f);
    }
}

fn structure_findings(report: &mut VerifyReport, check: &CheckReport) {
    for e in &check.errors {
        report.push(Finding::new(FindingKind::Structure, None, e));
    }
    for w in &check.warnings {
        let mut f = Finding::new(FindingKind::Structure, None, w);
        f.level = Level::Warning;
        report.push(f);
    }
}

/// `size` against the average of `previous`: `None` within `thresholds`, and when fewer than
/// [`SIZE_HISTORY`] previous sizes are known. Else the side and the average.
fn judge_size(
    thresholds: AnomalyThresholds,
    size: u64,
    previous: &[u64],
) -> Option<(SizeDeviation, f64)> {
    if previous.len() < SIZE_HISTORY {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let average = previous.iter().sum::<u64>() as f64 / previous.len() as f64;
    thresholds.judge(size, average).map(|d| (d, average))
}

/// For each of an asset's snapshot sizes, oldest first, whether `verify` would call it an
/// anomaly had it been the newest: outside the asset's `size` bounds, or against the average
/// of the up to seven sizes before it. The dashboard marks these on its size chart.
#[must_use]
pub fn size_anomalies(asset: &ResolvedAsset, sizes: &[u64]) -> Vec<bool> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            size_breach(asset, size).is_some()
                || judge_size(
                    asset.anomaly,
                    size,
                    &sizes[i.saturating_sub(SIZE_WINDOW)..i],
                )
                .is_some()
        })
        .collect()
}

/// Why a snapshot of `size` bytes lies outside the asset's `size` bounds, and what to change
/// if that is expected; `None` within them.
pub(crate) fn size_breach(asset: &ResolvedAsset, size: u64) -> Option<(String, String)> {
    let (side, bound) = asset.size.judge(size)?;
    let (what, key) = match side {
        SizeDeviation::Smaller => ("below the minimum", "min"),
        SizeDeviation::Larger => ("above the maximum", "max"),
    };
    Some((
        format!(
            "size {} is {what} of {} (assets.{}.size)",
            human_bytes(size),
            human_bytes(bound),
            asset.name
        ),
        format!(
            "if the size is expected, change assets.{}.size.{key} in the plan",
            asset.name
        ),
    ))
}

/// The newest snapshot of `window` against the asset's size bounds, else against the average
/// size of the ones before it.
fn size_anomaly(
    asset: &ResolvedAsset,
    window: &[&SnapshotInfo],
    sizes: &BTreeMap<&str, u64>,
) -> Option<Finding> {
    let (newest, previous) = window.split_last()?;
    let size = *sizes.get(newest.id.as_str())?;
    if let Some((text, hint)) = size_breach(asset, size) {
        let mut f = Finding::new(FindingKind::SizeAnomaly, Some(newest), &text);
        f.hint = Some(hint);
        f.bytes = Some(size);
        return Some(f);
    }
    let known: Vec<u64> = previous
        .iter()
        .filter_map(|s| sizes.get(s.id.as_str()).copied())
        .collect();
    let (deviation, average) = judge_size(asset.anomaly, size, &known)?;
    let (side, threshold) = match deviation {
        SizeDeviation::Smaller => ("below", asset.anomaly.below()),
        SizeDeviation::Larger => ("above", asset.anomaly.above()),
    };
    #[allow(clippy::cast_precision_loss)]
    let ratio = size as f64 / average;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let average_bytes = average.round() as u64;
    let mut f = Finding::new(
        FindingKind::SizeAnomaly,
        Some(newest),
        &format!(
            "size {} is {} of the average of the {} snapshots before it ({}), {side} the {} threshold",
            human_bytes(size),
            percent(ratio),
            known.len(),
            human_bytes(average_bytes),
            percent(threshold),
        ),
    );
    f.hint = Some(format!(
        "if the change is expected, widen assets.{}.anomaly in the plan, e.g. {{ {side} = {} }}",
        asset.name,
        match deviation {
            SizeDeviation::Smaller => format!("{:.2}", (ratio / 2.0).max(0.01)),
            SizeDeviation::Larger => format!("{:.1}", (ratio * 2.0).ceil()),
        }
    ));
    f.bytes = Some(size);
    f.average_bytes = Some(average_bytes);
    Some(f)
}

/// `10%`, `0.4%`.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p >= 1.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `1.2 GiB`, `340.0 KiB`, `12 B`, as the CLI prints sizes.
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_data_takes_a_share_of_the_packs() {
        assert_eq!("10%".parse(), Ok(ReadData::Percent(10.0)));
        assert_eq!("2.5%".parse(), Ok(ReadData::Percent(2.5)));
        assert_eq!("100%".parse(), Ok(ReadData::All));
        for bad in ["0%", "150%", "-5%", "nan%", "ten", "10", "%", ""] {
            assert!(bad.parse::<ReadData>().is_err(), "{bad}");
        }
        assert_eq!(
            "150%".parse::<ReadData>().unwrap_err(),
            "150% is out of range: give more than 0% and at most 100%"
        );
        assert_eq!(ReadData::Percent(10.0).to_string(), "10%");
        assert_eq!(ReadData::All.to_string(), "all");
    }

    #[test]
    fn judges_the_newest_size_against_at_least_two_before_it() {
        let t = AnomalyThresholds::DEFAULT;
        assert_eq!(judge_size(t, 100, &[1000]), None);
        assert_eq!(
            judge_size(t, 100, &[1000, 1000, 1000]),
            Some((SizeDeviation::Smaller, 1000.0))
        );
        assert_eq!(
            judge_size(t, 5000, &[1000, 3000]),
            Some((SizeDeviation::Larger, 2000.0))
        );
        assert_eq!(judge_size(t, 1500, &[1000, 3000]), None);
        let lenient = AnomalyThresholds::new(0.05, 2.0).unwrap();
        assert_eq!(judge_size(lenient, 100, &[1000, 1000, 1000]), None);
    }

    #[test]
    fn percentages_and_sizes_read_as_the_cli_prints_them() {
        assert_eq!(percent(0.1), "10%");
        assert_eq!(percent(0.004), "0.4%");
        assert_eq!(percent(2.0), "200%");
        assert_eq!(human_bytes(100 * 1024), "100.0 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
