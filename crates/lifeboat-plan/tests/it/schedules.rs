//! `[schedules]`: plan-level jobs, time zone, jitter, pacing; each error at its key path.

use std::time::Duration;

use lifeboat_plan::ScheduleZone;

use crate::{MINIMAL, err, ok};

#[test]
fn a_plan_without_schedules_runs_backups_only() {
    let plan = ok(MINIMAL);
    let s = &plan.schedules;
    assert_eq!(s.time_zone, ScheduleZone::LOCAL);
    assert_eq!(s.jitter, Duration::ZERO);
    assert!(s.jobs().is_empty());
    assert_eq!(s.parallel, 1);
    assert_eq!(s.rpo_reminder, Duration::from_secs(4 * 3600));
}

#[test]
fn every_key_resolves() {
    let plan = ok(&format!(
        "{MINIMAL}schedule = \"0 */6 * * *\"\n[schedules]\ntime-zone = \"Europe/Paris\"\njitter = \"5m\"\n\
         verify = \"0 3 * * *\"\nverify-read-data = \"10%\"\ndrill = \"0 4 * * 0\"\n\
         forget = \"30 4 * * *\"\nprune = \"0 5 * * 0\"\ncopy = \"15 * * * *\"\nparallel = 2\nrpo-reminder = \"1h\"\n"
    ));
    let s = &plan.schedules;
    assert_eq!(s.time_zone.name(), Some("Europe/Paris"));
    assert_eq!(s.jitter, Duration::from_secs(300));
    assert_eq!(s.verify_read_data.as_deref(), Some("10%"));
    let jobs: Vec<(&str, String)> = s.jobs().iter().map(|(k, c)| (*k, c.expr.clone())).collect();
    assert_eq!(
        jobs,
        [
            ("verify", "0 3 * * *".to_owned()),
            ("drill", "0 4 * * 0".to_owned()),
            ("forget", "30 4 * * *".to_owned()),
            ("prune", "0 5 * * 0".to_owned()),
            ("copy", "15 * * * *".to_owned()),
        ]
    );
    assert_eq!((s.parallel, s.rpo_reminder), (2, Duration::from_secs(3600)));
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "time-zone = \"Mars/Olympus\"\n",
            "/plans/lifeboat.toml:8:13: schedules.time-zone: unknown time zone \"Mars/Olympus\"\n  hint: use an IANA name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\"; leave it out for the host's local time",
        ),
        (
            "drill = \"0 4 * *\"\n",
            "/plans/lifeboat.toml:8:9: schedules.drill: invalid cron expression \"0 4 * *\": Invalid pattern: Pattern must have 5 fields when seconds are disallowed.\n  hint: use 5 fields, minute hour day-of-month month day-of-week, e.g. \"0 */6 * * *\"",
        ),
        (
            "jitter = \"soon\"\n",
            "/plans/lifeboat.toml:8:10: schedules.jitter: invalid duration \"soon\": expected number at 0\n  hint: write durations like \"30m\", \"4h\" or \"1d 2h\"",
        ),
        (
            "parallel = 0\n",
            "/plans/lifeboat.toml:8:12: schedules.parallel: must be at least 1\n  hint: the number of jobs that may run at once on one repository",
        ),
        (
            "verify = \"0 3 * * *\"\nverify-read-data = \"110%\"\n",
            "/plans/lifeboat.toml:9:20: schedules.verify-read-data: invalid share \"110%\"\n  hint: write a percentage of the packs to read, from \"1%\" to \"100%\"",
        ),
        (
            "verify-read-data = \"5%\"\n",
            "/plans/lifeboat.toml:8:20: schedules.verify-read-data: set without a verify schedule\n  hint: add verify = \"0 3 * * *\" beside it, or remove it",
        ),
        (
            "verfy = \"0 3 * * *\"\n",
            "/plans/lifeboat.toml:8:1: schedules.verfy: unknown key, did you mean verify?",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            err(&format!("{MINIMAL}[schedules]\n{text}")),
            expected,
            "{text}"
        );
    }
}
