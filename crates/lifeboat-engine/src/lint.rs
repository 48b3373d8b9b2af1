//! `plan check`: what a valid plan may still get wrong, found without touching a server or a
//! repository. Errors are steps that would fail or do harm when a recovery runs; warnings are
//! gaps in the plan (no schedule, no retention, no targets, no off-site copy, a restore
//! forecast over its target).

use lifeboat_core::{Priority, RepoLocation};
use lifeboat_plan::{NotifyEvent, ResolvedPlan, Step};
use serde::Serialize;

use crate::{Level, catalog::Catalog, engine::Engine, report::forecast_rto};

/// One thing `plan check` found.
#[derive(Debug, Clone, Serialize)]
pub struct PlanFinding {
    pub level: Level,
    /// The key path it is about, e.g. `assets.db` or `scenarios[1].steps[2]`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

/// What `plan check` found, and what it looked at.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCheck {
    pub plan: String,
    pub assets: usize,
    pub scenarios: usize,
    /// Past drills read from the catalog for forecasts (none when there is no catalog yet).
    pub drills: usize,
    pub findings: Vec<PlanFinding>,
}

impl PlanCheck {
    /// 1 with an error, 3 with warnings only, 0 when clean.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        let exit = if self.findings.iter().any(|f| f.level == Level::Error) {
            lifeboat_core::Exit::Error
        } else if self.findings.is_empty() {
            lifeboat_core::Exit::Ok
        } else {
            lifeboat_core::Exit::Partial
        };
        exit.code()
    }
}

struct Findings(Vec<PlanFinding>);

impl Findings {
    fn add(&mut self, level: Level, key: String, message: String, hint: Option<&str>) {
        self.0.push(PlanFinding {
            level,
            key,
            message,
            hint: hint.map(str::to_owned),
        });
    }
}

impl Engine {
    /// Lints the loaded plan. Reads the catalog for forecasts when it exists; never creates it,
    /// opens a repository or connects to a server.
    #[must_use]
    pub fn plan_check(&self) -> PlanCheck {
        let plan = self.plan();
        let drills = {
            let path = self.catalog_path();
            if path.exists() {
                Catalog::open(&path)
                    .and_then(|c| c.recent_reports(20))
                    .unwrap_or_else(|e| {
                        tracing::warn!("restore forecasts unavailable: {e}");
                        Vec::new()
                    })
            } else {
                Vec::new()
            }
        };
        let mut f = Findings(Vec::new());
        assets(plan, &drills, &mut f);
        offsite(plan, &mut f);
        scenarios(plan, &mut f);
        unraised_events(plan, &mut f);
        if !self.kit_is_current() {
            f.add(
                Level::Warning,
                "kit".into(),
                "no recovery kit written since the plan last changed".into(),
                Some("run `lifeboat kit`: one page with the repositories, where their passwords come from and the restore commands, for a day without this host"),
            );
        }
        if plan.notify.is_empty() {
            f.add(
                Level::Warning,
                "notify".into(),
                "no notifier: a failed backup or a missed RPO reaches nobody".into(),
                Some("add [notify.ops] with type = \"slack\", \"discord\", \"pagerduty\", \"webhook\" or \"healthchecks\""),
            );
        }
        PlanCheck {
            plan: plan.name.clone(),
            assets: plan.assets.len(),
            scenarios: plan.scenarios.len(),
            drills: drills.len(),
            findings: f.0,
        }
    }
}

fn assets(plan: &ResolvedPlan, drills: &[crate::DrillReport], f: &mut Findings) {
    for a in &plan.assets {
        let key = format!("assets.{}", a.name);
        if a.schedule.is_none() {
            f.add(
                Level::Warning,
                key.clone(),
                "no schedule: backed up only when someone runs `lifeboat backup`".into(),
                Some("schedule = \"0 2 * * *\" (5-field cron)"),
            );
        }
        let r = &a.retention;
        if [r.last, r.hourly, r.daily, r.weekly, r.monthly, r.yearly]
            .iter()
            .all(Option::is_none)
            && r.within.is_none()
        {
            f.add(
                Level::Warning,
                key.clone(),
                "no retention: every snapshot is kept forever".into(),
                Some("retention = { daily = 7, weekly = 4, monthly = 12 }"),
            );
        }
        for (given, what, default) in [(a.rpo_given, "RPO", a.rpo), (a.rto_given, "RTO", a.rto)] {
            if !given {
                f.add(
                    Level::Warning,
                    key.clone(),
                    format!(
                        "no {what} target: the built-in default of {} applies",
                        humantime::format_duration(default)
                    ),
                    Some(&format!(
                        "set {} in [plan] or in [{key}]",
                        what.to_lowercase()
                    )),
                );
            }
        }
        if let lifeboat_plan::AssetSpec::DockerVolume(v) = &a.spec
            && v.stop.is_empty()
            && v.pause.is_empty()
        {
            f.add(
                Level::Warning,
                key.clone(),
                format!(
                    "volume {} is read while its containers may write to it: the copy can be inconsistent",
                    v.volume
                ),
                Some("stop = [\"container\"] (or pause = […]) names the containers that write to it"),
            );
        }
        // The newest drill's restore time stands for today's: no snapshot is read here.
        let drilled = drills
            .iter()
            .find_map(|d| d.assets.iter().find(|x| x.asset == a.name && x.ok));
        if let Some(d) = drilled
            && let Some(secs) = forecast_rto(drills, &a.name, d.bytes)
            && secs > a.rto.as_secs() as f64
        {
            f.add(
                Level::Warning,
                key.clone(),
                format!(
                    "restore forecast {} is over the RTO target of {} (newest drill)",
                    crate::human_secs(secs),
                    humantime::format_duration(a.rto)
                ),
                Some("raise the target, restore with more jobs, or make the asset smaller"),
            );
        }
    }
}

/// P0 assets need a copy away from the primary: a repository with `copy-from` reaching it.
fn offsite(plan: &ResolvedPlan, f: &mut Findings) {
    let primary = &plan.primary().name;
    let copies: Vec<_> = plan
        .repositories
        .iter()
        .filter(|r| r.copy_from.as_deref() == Some(primary.as_str()))
        .collect();
    let p0: Vec<&str> = plan
        .assets
        .iter()
        .filter(|a| a.priority == Priority::P0)
        .map(|a| a.name.as_str())
        .collect();
    if p0.is_empty() {
        return;
    }
    if copies.is_empty() {
        f.add(
            Level::Warning,
            "repositories".into(),
            format!(
                "no off-site copy of the P0 asset(s) {}: losing the host loses the backups",
                p0.join(", ")
            ),
            Some(&format!(
                "add [repositories.offsite] with an s3:// url and copy-from = \"{primary}\""
            )),
        );
    } else if copies
        .iter()
        .all(|r| matches!(r.location, RepoLocation::Local { .. }))
    {
        let names: Vec<&str> = copies.iter().map(|r| r.name.as_str()).collect();
        f.add(
            Level::Warning,
            format!("repositories.{}", names[0]),
            format!(
                "the copy of the P0 asset(s) {} is on a local path: it is off-site only if that path is another machine's disk",
                p0.join(", ")
            ),
            Some("prefer an s3:// repository for the copy"),
        );
    } else if copies.iter().all(|r| r.object_lock().is_none()) {
        let names: Vec<&str> = copies.iter().map(|r| r.name.as_str()).collect();
        f.add(
            Level::Warning,
            format!("repositories.{}", names[0]),
            format!(
                "no copy of the P0 asset(s) {} is immutable: whoever holds this host's keys can delete every copy",
                p0.join(", ")
            ),
            Some("put the copy in a bucket with S3 Object Lock and add object-lock = \"30d\" (docs/immutable-copies.md)"),
        );
    }
}

/// Steps that would fail or do harm when the scenario runs.
fn scenarios(plan: &ResolvedPlan, f: &mut Findings) {
    for (i, s) in plan.scenarios.iter().enumerate() {
        for (j, step) in s.steps.iter().enumerate() {
            let key = format!("scenarios[{i}].steps[{j}]");
            let Step::Restore {
                asset,
                to,
                tables,
                time,
                ..
            } = step
            else {
                continue;
            };
            let Some(a) = plan.asset(asset) else { continue };
            if time.is_some() && !crate::kinds::kind_for(a).recovers_to_a_point() {
                f.add(
                    Level::Error,
                    key.clone(),
                    format!("recovers {asset}, a {} asset, to a point in time", a.kind()),
                    Some("only a postgres-cluster recovers to a time; pick a snapshot with before = \"...\" instead"),
                );
            }
            if let Some(lint) =
                crate::kinds::kind_for(a).lint_restore_step(to.is_some(), !tables.is_empty())
            {
                f.add(Level::Error, key, lint.message, Some(&lint.hint));
            }
        }
    }
}

/// Notifiers waiting for an event nothing in the plan raises on a schedule: they would stay
/// silent exactly when they are counted on.
fn unraised_events(plan: &ResolvedPlan, f: &mut Findings) {
    let s = &plan.schedules;
    let bounded = plan
        .assets
        .iter()
        .any(|a| a.size.min.is_some() || a.size.max.is_some());
    for n in &plan.notify {
        for event in &n.on {
            let (raised, what, hint) = match event {
                NotifyEvent::SizeAnomaly => (
                    s.verify.is_some() || bounded,
                    "a verify, or a backup outside an asset's size bounds",
                    "add verify = \"0 3 * * *\" to [schedules], or size = { min = \"...\" } to the assets that matter",
                ),
                NotifyEvent::DrillFailed => (
                    s.drill.is_some() || !s.scenarios.is_empty(),
                    "a drill",
                    "add drill = \"0 4 * * 0\" or scenarios = { NAME = \"cron\" } to [schedules]",
                ),
                NotifyEvent::DiskSpace => (
                    plan.min_free.is_some(),
                    "a backup under [plan] min-free",
                    "add min-free = \"10GB\" to [plan]",
                ),
                _ => continue,
            };
            if !raised {
                f.add(
                    Level::Warning,
                    format!("notify.{}.on", n.name),
                    format!(
                        "waits for {}, which only {what} raises, and the plan has none",
                        event.as_str()
                    ),
                    Some(hint),
                );
            }
        }
    }
}
