//! Retention: which snapshots of an asset to keep, and why. Pure: no repository access.
//!
//! The keep rules are restic's (`--keep-last`, `--keep-daily`, ... `--keep-within`), applied
//! through rustic's implementation so that Lifeboat and restic agree on what a rule means.
//! Safety snapshots (taken before a restore) are outside the rules: each is kept for
//! [`SAFETY_KEEP`] and then removed.

use std::time::Duration;

use jiff::{Span, Timestamp, Zoned, tz::TimeZone};
use rustic_core::KeepOptions;
use serde::Serialize;

use crate::snapshot::SnapshotInfo;

/// How long a safety snapshot is kept.
pub const SAFETY_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// An asset's retention rules (`retention = { ... }` in the plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepRules {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<Duration>,
}

impl KeepRules {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn to_keep_options(&self) -> KeepOptions {
        let n = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        let mut k = KeepOptions::default();
        k.keep_last = n(self.last);
        k.keep_hourly = n(self.hourly);
        k.keep_daily = n(self.daily);
        k.keep_weekly = n(self.weekly);
        k.keep_monthly = n(self.monthly);
        k.keep_yearly = n(self.yearly);
        k.keep_within = self
            .within
            .map(|d| Span::new().seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        k
    }
}

/// The decision for one snapshot.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub short_id: String,
    pub time: Timestamp,
    pub keep: bool,
    /// Why it is kept (`last`, `daily`, ...), or why it goes.
    pub reasons: Vec<String>,
}

/// Decides, for the snapshots of one asset, which to keep. Newest first.
///
/// With no rules every snapshot is kept: removing data needs an explicit rule.
#[must_use]
pub fn decide(snapshots: &[SnapshotInfo], rules: &KeepRules, now: Timestamp) -> Vec<Decision> {
    let mut decisions = Vec::new();
    let (safety, regular): (Vec<_>, Vec<_>) = snapshots.iter().partition(|s| s.is_safety());
    if rules.is_empty() {
        decisions.extend(
            regular
                .iter()
                .map(|s| decision(s, true, vec!["no retention rule".into()])),
        );
    } else {
        let zoned_now = Zoned::new(now, TimeZone::UTC);
        let files = regular.iter().map(|s| s.file.clone()).collect();
        match rules.to_keep_options().apply(files, &zoned_now) {
            Ok(applied) => {
                for f in applied {
                    let id = f.snapshot.id.to_hex().to_string();
                    if let Some(s) = regular.iter().find(|s| s.id == id) {
                        let reasons = if f.keep {
                            f.reasons
                        } else {
                            vec!["matches no keep rule".into()]
                        };
                        decisions.push(decision(s, f.keep, reasons));
                    }
                }
            }
            Err(_) => decisions.extend(
                regular
                    .iter()
                    .map(|s| decision(s, true, vec!["invalid retention rule".into()])),
            ),
        }
    }
    let cutoff = now
        .checked_sub(Span::new().seconds(i64::try_from(SAFETY_KEEP.as_secs()).unwrap_or(0)))
        .unwrap_or(now);
    for s in safety {
        if s.time >= cutoff {
            decisions.push(decision(
                s,
                true,
                vec!["safety snapshot, kept 30 days".into()],
            ));
        } else {
            decisions.push(decision(
                s,
                false,
                vec!["safety snapshot older than 30 days".into()],
            ));
        }
    }
    decisions.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.id.cmp(&b.id)));
    decisions
}

fn decision(s: &SnapshotInfo, keep: bool, reasons: Vec<String>) -> Decision {
    Decision {
        id: s.id.clone(),
        short_id: s.short_id.clone(),
        time: s.time,
        keep,
        reasons,
    }
}
