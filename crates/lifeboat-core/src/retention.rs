//! Which snapshots of an asset to keep.

use std::time::Duration;

/// Keep rules, as restic's `forget` reads them: a snapshot is kept if any rule keeps it.
/// Every count is at least 1; a rule left out keeps nothing by itself; [`Retention::FOREVER`]
/// keeps one snapshot of every period there is (`monthly = "forever"`: the last of every
/// month, however many months).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// The last N snapshots.
    pub last: Option<u32>,
    /// The last snapshot of each of the last N hours that have one.
    pub hourly: Option<u32>,
    /// ... of each of the last N days.
    pub daily: Option<u32>,
    /// ... of each of the last N weeks.
    pub weekly: Option<u32>,
    /// ... of each of the last N months.
    pub monthly: Option<u32>,
    /// ... of each of the last N years.
    pub yearly: Option<u32>,
    /// Every snapshot younger than this.
    pub within: Option<Duration>,
}

impl Retention {
    /// The count of a rule that keeps every period (`"forever"` in a plan).
    pub const FOREVER: u32 = u32::MAX;

    /// No rule at all: the asset's snapshots are never forgotten.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.hourly.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
            && self.yearly.is_none()
            && self.within.is_none()
    }
}

/// The rules as a plan reads: `last 3, daily 7, within 1day`; `keep all` without any.
impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.map(|n| match n {
                Self::FOREVER => format!("{k} forever"),
                n => format!("{k} {n}"),
            })
        })
        .chain(
            self.within
                .map(|d| format!("within {}", humantime::format_duration(d))),
        )
        .collect();
        if parts.is_empty() {
            f.write_str("keep all")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forever_reads_as_the_plan_writes_it() {
        let r = Retention {
            daily: Some(7),
            monthly: Some(Retention::FOREVER),
            ..Retention::default()
        };
        assert_eq!(r.to_string(), "daily 7, monthly forever");
    }

    #[test]
    fn empty_only_without_rules() {
        assert!(Retention::default().is_empty());
        let r = Retention {
            within: Some(Duration::from_secs(60)),
            ..Retention::default()
        };
        assert!(!r.is_empty());
    }
}
