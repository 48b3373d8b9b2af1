//! The whole plan, resolved.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    asset::{self, AssetDefaults, ResolvedAsset},
    config::PlanFileConfig,
    dashboard::{self, ResolvedDashboard},
    document::{At, Document},
    error::PlanError,
    key_path::KeyPath,
    notify::{self, ResolvedNotify},
    repository::{self, ResolvedRepository},
    resolve::{Resolver, normalize},
    scenario::{self, Names, ResolvedScenario},
    schedules::{self, ResolvedSchedules},
    suggest,
};

/// The only plan file version this crate reads.
const VERSION: u32 = 1;
/// Defaults when `[plan]` sets no `rpo`/`rto`: a daily backup, a restore within a morning.
const DEFAULT_RPO: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_RTO: Duration = Duration::from_secs(4 * 3600);

/// A validated plan: every default applied, every reference checked, every path absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPlan {
    /// The plan file as given.
    pub file: PathBuf,
    /// The directory relative paths resolve against: the plan file's, made absolute (against
    /// the current directory, without touching the disk) and lexically normal.
    pub base_dir: PathBuf,
    /// The plan file format version; always 1.
    pub version: u32,
    /// `[plan].name`; tags every snapshot (`plan=NAME`).
    pub name: String,
    /// Plan-wide recovery point objective; assets inherit it.
    pub rpo: Duration,
    /// Plan-wide recovery time objective; assets inherit it.
    pub rto: Duration,
    /// `min-free`: the free space a backup needs in the spool directory and under a local
    /// repository before it starts; no check unless given.
    pub min_free: Option<u64>,
    /// In file order; the first is the primary. Never empty.
    pub repositories: Vec<ResolvedRepository>,
    /// In file order. Never empty.
    pub assets: Vec<ResolvedAsset>,
    /// `[notify.*]`, in file order.
    pub notify: Vec<ResolvedNotify>,
    /// `[[scenarios]]`, in file order; names are unique.
    pub scenarios: Vec<ResolvedScenario>,
    /// `[schedules]`: plan-level jobs, time zone, jitter and pacing for the daemon.
    pub schedules: ResolvedSchedules,
    /// `[dashboard]`: who may read and act on the daemon's web pages.
    pub dashboard: ResolvedDashboard,
}

impl ResolvedPlan {
    /// The asset named `name`.
    #[must_use]
    pub fn asset(&self, name: &str) -> Option<&ResolvedAsset> {
        self.assets.iter().find(|a| a.name == name)
    }

    /// The asset whose name is closest to `name`, when one is close enough to be a likely typo:
    /// the "did you mean" for an unknown asset on the command line.
    #[must_use]
    pub fn closest_asset(&self, name: &str) -> Option<&str> {
        suggest::closest(name, self.assets.iter().map(|a| a.name.as_str()))
    }

    /// The repository named `name`.
    #[must_use]
    pub fn repository(&self, name: &str) -> Option<&ResolvedRepository> {
        self.repositories.iter().find(|r| r.name == name)
    }

    /// The repository backups are written to: the first one.
    #[must_use]
    pub fn primary(&self) -> &ResolvedRepository {
        // Resolution refuses an empty list and otherwise supplies the embedded default.
        &self.repositories[0]
    }

    /// The scenario named `name`.
    #[must_use]
    pub fn scenario(&self, name: &str) -> Option<&ResolvedScenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// The directory relative paths in a plan at `file` resolve against.
pub(crate) fn base_dir(file: &Path) -> Result<PathBuf, PlanError> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::path::absolute(parent)
        .map(|p| normalize(&p))
        .map_err(|e| PlanError::new(file, format!("resolve the plan file's directory: {e}")))
}

pub(crate) fn resolve(
    doc: &Document<'_>,
    config: &PlanFileConfig,
    base_dir: PathBuf,
) -> Result<ResolvedPlan, PlanError> {
    let r = Resolver { doc, base_dir };
    let root = KeyPath::root();

    match config.version {
        Some(VERSION) => {}
        Some(v) => {
            return Err(r
                .error(&root.key("version"), format!("unsupported version {v}"))
                .with_hint("this Lifeboat reads version = 1 plan files"));
        }
        None => {
            return Err(r
                .error(&root.key("version"), "missing key")
                .with_hint("add version = 1 at the top of the plan file"));
        }
    }

    let Some(plan) = &config.plan else {
        return Err(r
            .error(&root.key("plan"), "missing table [plan]")
            .with_hint("add [plan] with name = \"my-services\""));
    };
    let plan_path = root.key("plan");
    let Some(name) = &plan.name else {
        return Err(r
            .error(&plan_path.key("name"), "missing key")
            .with_hint("name = \"my-services\"; it tags every snapshot"));
    };
    r.name(&plan_path.key("name"), At::Value, name)?;
    let rpo = r
        .opt_duration(&plan_path.key("rpo"), plan.rpo.as_ref())?
        .unwrap_or(DEFAULT_RPO);
    let rto = r
        .opt_duration(&plan_path.key("rto"), plan.rto.as_ref())?
        .unwrap_or(DEFAULT_RTO);

    let min_free = plan
        .min_free
        .as_ref()
        .map(|v| {
            lifeboat_core::parse_size(v).map_err(|e| {
                r.error(&plan_path.key("min-free"), e)
                    .with_hint("e.g. min-free = \"10GB\"")
            })
        })
        .transpose()?;
    let repositories = repository::resolve_all(&r, config.repositories.as_ref())?;

    let assets_path = root.key("assets");
    let asset_configs = match &config.assets {
        Some(a) if !a.is_empty() => a,
        _ => {
            return Err(r
                .error(&assets_path, "a plan needs at least one asset")
                .with_hint("add [assets.NAME] with type = \"postgres\", \"sqlite\", \"redis\", \"mysql\", \"files\" or \"command\""));
        }
    };
    let defaults = AssetDefaults {
        rpo,
        rto,
        rpo_given: plan.rpo.is_some(),
        rto_given: plan.rto.is_some(),
    };
    let assets = asset_configs
        .iter()
        .map(|(n, c)| asset::resolve(&r, &assets_path.key(n), n, c, &defaults))
        .collect::<Result<Vec<_>, _>>()?;

    let notify_path = root.key("notify");
    let notify = config
        .notify
        .iter()
        .map(|(n, c)| notify::resolve(&r, &notify_path.key(n), n, c))
        .collect::<Result<Vec<_>, _>>()?;

    let asset_names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    let notify_names: Vec<&str> = notify.iter().map(|n| n.name.as_str()).collect();
    let repository_names: Vec<&str> = repositories.iter().map(|r| r.name.as_str()).collect();
    let names = Names {
        assets: &asset_names,
        repositories: &repository_names,
        notifiers: &notify_names,
    };
    let scenarios_path = root.key("scenarios");
    let mut scenarios: Vec<ResolvedScenario> = Vec::with_capacity(config.scenarios.len());
    for (i, c) in config.scenarios.iter().enumerate() {
        let base = scenarios_path.index(i);
        let s = scenario::resolve(&r, &base, c, &names)?;
        if let Some(j) = scenarios.iter().position(|x| x.name == s.name) {
            return Err(r
                .error(
                    &base.key("name"),
                    format!("scenario {:?} is already defined at scenarios[{j}]", s.name),
                )
                .with_hint("scenario names must be unique: `lifeboat recover NAME` picks one"));
        }
        scenarios.push(s);
    }

    let scenario_names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    let schedules = schedules::resolve(&r, config.schedules.as_ref(), &scenario_names)?;
    let dashboard = dashboard::resolve(&r, config.dashboard.as_ref())?;

    Ok(ResolvedPlan {
        file: doc.file.to_path_buf(),
        base_dir: r.base_dir,
        version: VERSION,
        name: name.clone(),
        rpo,
        rto,
        min_free,
        repositories,
        assets,
        notify,
        scenarios,
        schedules,
        dashboard,
    })
}
