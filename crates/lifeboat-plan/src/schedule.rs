//! When an asset is backed up: a standard 5-field cron expression.

use std::fmt;

use chrono::{DateTime, TimeZone, Timelike, Utc};
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

/// A validated cron schedule, e.g. `0 */6 * * *`.
///
/// Only the 5-field form (minute hour day-of-month month day-of-week) is accepted, as in a
/// crontab: croner's optional seconds and years would make `0 0 * * * *` silently mean
/// something other than what a crontab reader expects.
#[derive(Clone)]
pub struct Schedule {
    /// The expression as written in the plan.
    pub expr: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a 5-field cron expression; the error is croner's message.
    pub fn parse(expr: &str) -> Result<Self, croner::errors::CronError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expr)?;
        Ok(Self {
            expr: expr.to_owned(),
            cron,
        })
    }

    /// The first time strictly after `t` that matches, in `t`'s time zone; `None` if the
    /// expression never matches again (e.g. `0 0 30 2 *`).
    #[must_use]
    pub fn next_after<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(t, false).ok()
    }

    /// The parsed expression, for callers that need more than [`Self::next_after`].
    #[must_use]
    pub const fn cron(&self) -> &Cron {
        &self.cron
    }
}

/// The time zone cron expressions are read in: `[schedules].time-zone`, or the host's local
/// time when the plan names none (as cron itself does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduleZone(Option<chrono_tz::Tz>);

impl ScheduleZone {
    /// The host's local time zone (`TZ`, `/etc/localtime`).
    pub const LOCAL: Self = Self(None);

    /// An IANA time zone name such as `Europe/Paris`; `None` when unknown.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        name.parse::<chrono_tz::Tz>().ok().map(|tz| Self(Some(tz)))
    }

    /// The IANA name, or `None` for the host's local time.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        self.0.map(chrono_tz::Tz::name)
    }

    /// The first time strictly after `t` at which `schedule` fires, read in this zone.
    /// Across a daylight-saving change a time that does not exist is skipped and one that
    /// occurs twice fires once, as croner decides.
    #[must_use]
    pub fn next_after(&self, schedule: &Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Whole seconds: croner carries the fraction of `t` into its answer.
        let t = t.with_nanosecond(0).unwrap_or(t);
        match self.0 {
            Some(tz) => schedule
                .next_after(&t.with_timezone(&tz))
                .map(|n| n.with_timezone(&Utc)),
            None => schedule
                .next_after(&t.with_timezone(&chrono::Local))
                .map(|n| n.with_timezone(&Utc)),
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl Eq for Schedule {}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expr)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_after_follows_crontab_meaning() {
        let every6h = Schedule::parse("0 */6 * * *").unwrap();
        assert_eq!(
            every6h.next_after(&at("2025-03-01T05:59:00Z")),
            Some(at("2025-03-01T06:00:00Z"))
        );
        // Strictly after: a run exactly on the hour schedules the next one.
        assert_eq!(
            every6h.next_after(&at("2025-03-01T06:00:00Z")),
            Some(at("2025-03-01T12:00:00Z"))
        );
        let nightly = Schedule::parse("0 2 * * *").unwrap();
        assert_eq!(
            nightly.next_after(&at("2025-03-01T03:00:00Z")),
            Some(at("2025-03-02T02:00:00Z"))
        );
        // 2025-03-02 is a Sunday.
        let sunday = Schedule::parse("0 3 * * 0").unwrap();
        assert_eq!(
            sunday.next_after(&at("2025-02-27T00:00:00Z")),
            Some(at("2025-03-02T03:00:00Z"))
        );
    }

    #[test]
    fn a_named_zone_shifts_the_schedule() {
        let nightly = Schedule::parse("0 2 * * *").unwrap();
        let paris = ScheduleZone::named("Europe/Paris").unwrap();
        assert_eq!(paris.name(), Some("Europe/Paris"));
        // 02:00 in Paris is 01:00 UTC in winter, 00:00 UTC in summer.
        assert_eq!(
            paris.next_after(&nightly, at("2025-01-10T12:00:00Z")),
            Some(at("2025-01-11T01:00:00Z"))
        );
        assert_eq!(
            paris.next_after(&nightly, at("2025-07-10T12:00:00Z")),
            Some(at("2025-07-11T00:00:00Z"))
        );
        let fraction = at("2025-01-10T12:00:00Z") + chrono::Duration::milliseconds(250);
        assert_eq!(
            paris.next_after(&nightly, fraction),
            Some(at("2025-01-11T01:00:00Z"))
        );
        assert!(ScheduleZone::named("Mars/Olympus").is_none());
        assert_eq!(ScheduleZone::LOCAL.name(), None);
    }

    #[test]
    fn refuses_other_field_counts_and_garbage() {
        for bad in [
            "61 * * * *",
            "* * * *",
            "0 0 * * * *",
            "0 0 * * * * *",
            "every day",
            "",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
