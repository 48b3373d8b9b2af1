//! `[schedules]`: the jobs the daemon runs besides each asset's own backup schedule, the time
//! zone every cron expression is read in, and how the daemon paces itself.

use std::time::Duration;

use crate::{
    config::SchedulesConfig,
    error::PlanError,
    key_path::KeyPath,
    resolve::Resolver,
    schedule::{Schedule, ScheduleZone},
};

/// How often an RPO breach is notified again while it lasts, unless the plan says otherwise.
const DEFAULT_RPO_REMINDER: Duration = Duration::from_secs(4 * 3600);

/// `[schedules]` with its defaults applied. Every schedule is optional: a plan without
/// `[schedules]` has the daemon run asset backups only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSchedules {
    /// The zone every cron expression of the plan (assets' included) is read in.
    pub time_zone: ScheduleZone,
    /// Each scheduled run starts up to this much later than its cron time, at random, so that
    /// many hosts on the same schedule do not hit one store at once. Zero by default.
    pub jitter: Duration,
    /// `verify` of every asset.
    pub verify: Option<Schedule>,
    /// What the scheduled verify reads of the packs: `None` (structure and manifests only) or
    /// a share such as `10%`, or `100%`; validated here, read by the engine.
    pub verify_read_data: Option<String>,
    /// A restore drill of every asset.
    pub drill: Option<Schedule>,
    /// Retention (`forget`) of every asset.
    pub forget: Option<Schedule>,
    /// `prune` of the primary repository.
    pub prune: Option<Schedule>,
    /// Copies to every repository with `copy-from`.
    pub copy: Option<Schedule>,
    /// Jobs at once on one repository (backups of different assets); at least 1. Forget and
    /// prune always run alone.
    pub parallel: usize,
    /// While an asset's RPO stays breached, its `rpo-breach` notification is repeated this often.
    pub rpo_reminder: Duration,
    /// `scenarios = { NAME = "cron" }`: runbooks rehearsed as drills (sandboxes, no live
    /// target touched), by scenario name, in file order.
    pub scenarios: Vec<(String, Schedule)>,
}

impl Default for ResolvedSchedules {
    fn default() -> Self {
        Self {
            time_zone: ScheduleZone::LOCAL,
            jitter: Duration::ZERO,
            verify: None,
            verify_read_data: None,
            drill: None,
            forget: None,
            prune: None,
            copy: None,
            parallel: 1,
            rpo_reminder: DEFAULT_RPO_REMINDER,
            scenarios: Vec::new(),
        }
    }
}

impl ResolvedSchedules {
    /// The plan-level jobs that have a schedule, by their key in `[schedules]`.
    #[must_use]
    pub fn jobs(&self) -> Vec<(&'static str, &Schedule)> {
        [
            ("verify", &self.verify),
            ("drill", &self.drill),
            ("forget", &self.forget),
            ("prune", &self.prune),
            ("copy", &self.copy),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
        .collect()
    }
}

/// A cron expression at `path`, with the error and hint every schedule key gives.
pub(crate) fn cron(
    r: &Resolver<'_, '_>,
    path: &KeyPath,
    expr: &str,
) -> Result<Schedule, PlanError> {
    Schedule::parse(expr).map_err(|e| {
        r.error(path, format!("invalid cron expression {expr:?}: {e}"))
            .with_hint(
                "use 5 fields, minute hour day-of-month month day-of-week, e.g. \"0 */6 * * *\"",
            )
    })
}

pub(crate) fn resolve(
    r: &Resolver<'_, '_>,
    c: Option<&SchedulesConfig>,
    scenario_names: &[&str],
) -> Result<ResolvedSchedules, PlanError> {
    let Some(c) = c else {
        return Ok(ResolvedSchedules::default());
    };
    let base = KeyPath::root().key("schedules");
    let time_zone = match &c.time_zone {
        None => ScheduleZone::LOCAL,
        Some(name) => ScheduleZone::named(name).ok_or_else(|| {
            r.error(&base.key("time-zone"), format!("unknown time zone {name:?}"))
                .with_hint("use an IANA name such as \"UTC\", \"Europe/Paris\" or \"America/New_York\"; leave it out for the host's local time")
        })?,
    };
    let jitter = match &c.jitter {
        None => Duration::ZERO,
        Some(j) => r.duration(&base.key("jitter"), j)?,
    };
    let opt = |key: &str, v: &Option<String>| {
        v.as_deref()
            .map(|expr| cron(r, &base.key(key), expr))
            .transpose()
    };
    let verify = opt("verify", &c.verify)?;
    let verify_read_data = match &c.verify_read_data {
        None => None,
        Some(v) => {
            let path = base.key("verify-read-data");
            let pct = v
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u8>().ok())
                .filter(|n| (1..=100).contains(n));
            if pct.is_none() {
                return Err(r.error(&path, format!("invalid share {v:?}")).with_hint(
                    "write a percentage of the packs to read, from \"1%\" to \"100%\"",
                ));
            }
            if verify.is_none() {
                return Err(r
                    .error(&path, "set without a verify schedule")
                    .with_hint("add verify = \"0 3 * * *\" beside it, or remove it"));
            }
            Some(v.clone())
        }
    };
    let parallel = match c.parallel {
        None => 1,
        Some(0) => {
            return Err(r
                .error(&base.key("parallel"), "must be at least 1")
                .with_hint("the number of jobs that may run at once on one repository"));
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    Ok(ResolvedSchedules {
        time_zone,
        jitter,
        verify,
        verify_read_data,
        drill: opt("drill", &c.drill)?,
        forget: opt("forget", &c.forget)?,
        prune: opt("prune", &c.prune)?,
        copy: opt("copy", &c.copy)?,
        parallel,
        rpo_reminder: match &c.rpo_reminder {
            None => DEFAULT_RPO_REMINDER,
            Some(d) => r.duration(&base.key("rpo-reminder"), d)?,
        },
        scenarios: scenario_drills(r, &base.key("scenarios"), c, scenario_names)?,
    })
}

/// `scenarios = { NAME = "cron" }`, each name a scenario of the plan.
fn scenario_drills(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    c: &SchedulesConfig,
    names: &[&str],
) -> Result<Vec<(String, Schedule)>, PlanError> {
    let mut out = Vec::new();
    for (name, expr) in c.scenarios.iter().flatten() {
        let path = base.key(name);
        if !names.contains(&name.as_str()) {
            let hint = if names.is_empty() {
                "the plan defines no [[scenarios]]".to_owned()
            } else {
                format!("the plan's scenarios: {}", names.join(", "))
            };
            return Err(r
                .error(&path, format!("no scenario named {name:?}"))
                .with_hint(hint));
        }
        out.push((name.clone(), cron(r, &path, expr)?));
    }
    Ok(out)
}
