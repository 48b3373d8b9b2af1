//! Retention: which snapshots of an asset to keep, and why. Pure: no repository access.
//!
//! The keep rules are restic's (`--keep-last`, `--keep-daily`, ... `--keep-within`), applied
//! through rustic's implementation so that Lifeboat and restic agree on what a rule means,
//! except where `retention_vs_restic.rs` pins a difference (Lifeboat then keeps more).
//! Safety snapshots (taken before a restore) are outside the rules: each is kept for
//! [`SAFETY_KEEP`] and then removed.

use std::time::Duration;

use jiff::{Span, Timestamp, Zoned, tz::TimeZone};
use lifeboat_core::Retention;
use rustic_core::KeepOptions;
use serde::Serialize;

use crate::snapshot::SnapshotInfo;

/// How long a safety snapshot is kept.
pub const SAFETY_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

fn to_keep_options(rules: &Retention) -> KeepOptions {
    // rustic's -1: every period.
    let n = |v: Option<u32>| {
        v.map(|v| match v {
            Retention::FOREVER => -1,
            v => i32::try_from(v).unwrap_or(i32::MAX),
        })
    };
    let mut k = KeepOptions::default();
    k.keep_last = n(rules.last);
    k.keep_hourly = n(rules.hourly);
    k.keep_daily = n(rules.daily);
    k.keep_weekly = n(rules.weekly);
    k.keep_monthly = n(rules.monthly);
    k.keep_yearly = n(rules.yearly);
    k.keep_within = rules
        .within
        .map(|d| Span::new().seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    k
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
pub fn decide(snapshots: &[SnapshotInfo], rules: &Retention, now: Timestamp) -> Vec<Decision> {
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
        // A snapshot dated after `now` (written by a host with a wrong clock) is kept and left
        // out of the rules: rustic counts `within` back from the newest snapshot, and one in
        // the future would leave every real snapshot outside the window (restic skips them
        // the same way).
        let (future, regular): (Vec<_>, Vec<_>) = regular.into_iter().partition(|s| s.time > now);
        decisions.extend(
            future
                .iter()
                .map(|s| decision(s, true, vec!["dated in the future".into()])),
        );
        let files = regular.iter().map(|s| s.file.clone()).collect();
        match to_keep_options(rules).apply(files, &zoned_now) {
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

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use jiff::{Span, Timestamp, Zoned, tz::TimeZone};
    use rustic_core::{
        Id,
        repofile::{SnapshotFile, StringList},
    };

    use super::*;

    /// A history: one backup every 6 hours for 400 days, ending 2026-11-20 18:00 UTC, plus two
    /// safety snapshots (one 3 days old, one 45 days old).
    fn history() -> (Vec<SnapshotInfo>, Timestamp) {
        let end: Timestamp = "2026-11-20T18:00:00Z".parse().unwrap();
        let mut snaps = Vec::new();
        for i in 0..(400 * 4) {
            let time = end - Span::new().hours(6 * i64::from(i));
            snaps.push(snap(time, false, i));
        }
        snaps.push(snap(end - Span::new().hours(72), true, 9001));
        snaps.push(snap(end - Span::new().hours(45 * 24), true, 9002));
        (snaps, end + Span::new().hours(1))
    }

    fn snap(time: Timestamp, safety: bool, n: u32) -> SnapshotInfo {
        let mut tags = StringList::default();
        tags.add("lifeboat".into());
        tags.add("asset=db".into());
        if safety {
            tags.add("safety".into());
        }
        let mut hex = format!("{n:08x}");
        hex.push_str(&"0".repeat(56));
        let file = SnapshotFile {
            time: Zoned::new(time, TimeZone::UTC),
            tags,
            id: hex.parse::<Id>().unwrap().into(),
            ..SnapshotFile::default()
        };
        SnapshotInfo::from_file(file)
    }

    fn render(decisions: &[Decision]) -> String {
        let mut out = String::new();
        for d in decisions.iter().filter(|d| d.keep) {
            let _ = writeln!(out, "{} {} {}", d.short_id, d.time, d.reasons.join(","));
        }
        let removed = decisions.iter().filter(|d| !d.keep).count();
        let _ = writeln!(out, "removed: {removed}");
        out
    }

    #[test]
    fn gfs_over_generated_history() {
        let (snaps, now) = history();
        let rules = Retention {
            last: Some(4),
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(12),
            yearly: Some(2),
            ..Retention::default()
        };
        let decisions = decide(&snaps, &rules, now);
        assert_eq!(decisions.len(), snaps.len());
        insta::assert_snapshot!(render(&decisions));
    }

    #[test]
    fn monthly_forever_keeps_the_last_snapshot_of_every_month() {
        let (snaps, now) = history();
        let regular: Vec<_> = snaps.iter().filter(|s| !s.is_safety()).collect();
        // The newest snapshot of each month, and the oldest one: as restic does, a rule with
        // a count left also keeps the oldest snapshot, and "forever" always has one left.
        let mut newest: std::collections::BTreeMap<String, &SnapshotInfo> = Default::default();
        for s in &regular {
            let month = s.time.strftime("%Y-%m").to_string();
            let e = newest.entry(month).or_insert(s);
            if s.time > e.time {
                *e = s;
            }
        }
        assert!(
            newest.len() > 12,
            "the history spans {} months",
            newest.len()
        );
        let oldest = regular.iter().min_by_key(|s| s.time).expect("snapshots");
        let mut want: std::collections::BTreeSet<&str> =
            newest.values().map(|s| s.id.as_str()).collect();
        want.insert(oldest.id.as_str());
        let rules = Retention {
            monthly: Some(Retention::FOREVER),
            ..Retention::default()
        };
        let decisions = decide(&snaps, &rules, now);
        let kept: std::collections::BTreeSet<&str> = decisions
            .iter()
            .filter(|d| d.keep && d.reasons.iter().any(|r| r.contains("monthly")))
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(kept, want, "{}", render(&decisions));
        // Twelve keeps fewer.
        let twelve = Retention {
            monthly: Some(12),
            ..Retention::default()
        };
        let kept_twelve = decide(&snaps, &twelve, now)
            .iter()
            .filter(|d| d.keep)
            .count();
        assert!(kept_twelve < decisions.iter().filter(|d| d.keep).count());
    }

    #[test]
    fn within_keeps_everything_recent_and_nothing_else() {
        let (snaps, now) = history();
        let rules = Retention {
            within: Some(Duration::from_secs(2 * 24 * 3600)),
            ..Retention::default()
        };
        let decisions = decide(&snaps, &rules, now);
        let kept_regular = decisions
            .iter()
            .filter(|d| d.keep && !d.reasons[0].starts_with("safety"))
            .count();
        // 2 days of 4 backups a day, counted back from the newest backup.
        assert_eq!(kept_regular, 8);
    }

    #[test]
    fn no_rules_keep_everything_and_old_safety_snapshots_go() {
        let (snaps, now) = history();
        let decisions = decide(&snaps, &Retention::default(), now);
        let removed: Vec<_> = decisions.iter().filter(|d| !d.keep).collect();
        assert_eq!(removed.len(), 1);
        assert_eq!(
            removed[0].reasons,
            vec!["safety snapshot older than 30 days"]
        );
    }
}
