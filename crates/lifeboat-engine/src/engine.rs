//! The engine: one plan, the repositories it names, the assets it protects. Each job adds
//! its own `impl Engine` in its module; this one holds what they all use.

use jiff::Timestamp;
use lifeboat_core::RepoLocation;
use lifeboat_plan::{PasswordSource, ResolvedAsset, ResolvedPlan, ResolvedRepository};
use lifeboat_repo::{Progress, Repo, RepoConfig, RepoError, SnapshotInfo};

use crate::{
    EngineError,
    secrets::{read_secret, repository_password},
};

/// Runs jobs for one plan.
#[derive(Debug)]
pub struct Engine {
    plan: ResolvedPlan,
    progress: Progress,
    /// `--repo NAME`: this repository stands in for the primary (e.g. the off-site copy after
    /// the host with the primary is lost).
    primary: Option<String>,
}

impl Engine {
    #[must_use]
    pub const fn new(plan: ResolvedPlan, progress: Progress) -> Self {
        Self {
            plan,
            progress,
            primary: None,
        }
    }

    /// Makes the repository `name` stand in for the primary in every job.
    ///
    /// # Errors
    /// When the plan has no repository of that name.
    pub fn use_repository(&mut self, name: &str) -> Result<(), EngineError> {
        self.repository(name)?;
        self.primary = Some(name.to_owned());
        Ok(())
    }

    /// The repository jobs read and write: `--repo`'s, else the plan's first.
    #[must_use]
    pub fn primary(&self) -> &ResolvedRepository {
        self.primary
            .as_deref()
            .and_then(|n| self.plan.repositories.iter().find(|r| r.name == n))
            .unwrap_or_else(|| self.plan.primary())
    }

    pub(crate) const fn progress(&self) -> &Progress {
        &self.progress
    }

    #[must_use]
    pub const fn plan(&self) -> &ResolvedPlan {
        &self.plan
    }

    pub(crate) fn repo_config(&self, repo: &ResolvedRepository) -> Result<RepoConfig, EngineError> {
        let password = repository_password(repo)?;
        let s3_credentials = match &repo.s3_credentials {
            Some(vars) => {
                let get = |var: &str| {
                    read_secret(&lifeboat_plan::SecretSource::Env(var.to_owned())).map_err(
                        |reason| EngineError::Password {
                            repo: repo.name.clone(),
                            reason,
                            hint: None,
                        },
                    )
                };
                Some((
                    get(&vars.access_key_id_env)?,
                    get(&vars.secret_access_key_env)?,
                ))
            }
            None => None,
        };
        Ok(RepoConfig {
            name: repo.name.clone(),
            location: repo.location.clone(),
            password,
            s3_credentials,
        })
    }

    /// Opens the primary repository.
    ///
    /// # Errors
    /// No repository (exit 10), wrong password (12), unreadable password.
    pub fn open_primary(&self) -> Result<Repo, EngineError> {
        let repo = self.primary();
        if repo.embedded_default
            && let PasswordSource::DefaultFile(path) = &repo.password
            && !path.exists()
            && let RepoLocation::Local { path: repo_path } = &repo.location
            && !repo_path.join("config").exists()
        {
            return Err(RepoError::NotFound {
                name: repo.name.clone(),
                location: repo_path.display().to_string(),
            }
            .into());
        }
        let config = self.repo_config(repo)?;
        Ok(Repo::open(&config, &self.progress)?)
    }

    /// Opens the repository named `name` (a restore step's `from`), or the primary when `None`.
    ///
    /// # Errors
    /// An unknown name, and those of [`Engine::open_primary`].
    pub fn open_named_or_primary(&self, name: Option<&str>) -> Result<Repo, EngineError> {
        match name.filter(|n| *n != self.primary().name) {
            Some(name) => self.open_repository(name),
            None => self.open_primary(),
        }
    }

    pub(crate) fn asset(&self, name: &str) -> Result<&ResolvedAsset, EngineError> {
        self.plan.asset(name).ok_or_else(|| {
            let known: Vec<&str> = self.plan.assets.iter().map(|a| a.name.as_str()).collect();
            EngineError::usage(
                format!("unknown asset {name}"),
                Some(&format!("the plan has: {}", known.join(", "))),
            )
        })
    }

    /// The assets named, in plan order; all of them when `names` is empty. Unknown names are an
    /// error before anything runs.
    pub(crate) fn select(&self, names: &[String]) -> Result<Vec<&ResolvedAsset>, EngineError> {
        if names.is_empty() {
            return Ok(self.plan.assets.iter().collect());
        }
        names.iter().map(|n| self.asset(n)).collect()
    }

    /// The plan's repository named `name`.
    pub(crate) fn repository(&self, name: &str) -> Result<&ResolvedRepository, EngineError> {
        self.plan()
            .repositories
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .plan()
                    .repositories
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                EngineError::usage(
                    format!("unknown repository {name}"),
                    Some(&format!("the plan has: {}", known.join(", "))),
                )
            })
    }

    /// Opens the plan's repository named `name`.
    ///
    /// # Errors
    /// Unknown name, no repository there (exit 10), wrong password (12).
    pub fn open_repository(&self, name: &str) -> Result<Repo, EngineError> {
        let repo = self.repository(name)?;
        let config = self.repo_config(repo)?;
        Ok(Repo::open(&config, self.progress())?)
    }

    /// The snapshot of `asset` a job takes: the one whose id starts with `snapshot`, the
    /// newest taken before `before` (a time, see [`Self::parse_time`]), or the newest.
    ///
    /// # Errors
    /// Both given, a time that cannot be read, or no such snapshot.
    pub(crate) fn pick_snapshot(
        &self,
        repo: &Repo,
        asset: &str,
        snapshot: Option<&str>,
        before: Option<&str>,
    ) -> Result<SnapshotInfo, EngineError> {
        match (snapshot, before) {
            (Some(_), Some(_)) => Err(EngineError::usage(
                format!("choose the snapshot of asset {asset} by id or by time, not both"),
                Some("drop --snapshot or --before"),
            )),
            (_, Some(time)) => Ok(repo.find_snapshot_before(asset, self.parse_time(time)?)?),
            (id, None) => Ok(repo.find_snapshot(asset, id)?),
        }
    }

    /// A point in time as an operator writes it: RFC 3339 (`2026-12-05T10:00:00Z`,
    /// `…+01:00`), or a date and time (`2026-12-05 10:00`, seconds optional) or a date alone
    /// (its midnight) in the plan's time zone (`[schedules] time-zone`, else this host's).
    ///
    /// # Errors
    /// Text in none of these forms, or a time zone that cannot be loaded.
    pub fn parse_time(&self, text: &str) -> Result<Timestamp, EngineError> {
        let text = text.trim();
        if let Ok(t) = text.parse::<Timestamp>() {
            return Ok(t);
        }
        let bad = |why: String| {
            EngineError::usage(
                format!("read the time {text:?}: {why}"),
                Some("write 2026-12-05 10:00 (in the plan's time zone) or 2026-12-05T10:00:00Z"),
            )
        };
        let civil = text
            .parse::<jiff::civil::DateTime>()
            .or_else(|_| {
                text.parse::<jiff::civil::Date>()
                    .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            })
            .map_err(|e| bad(e.to_string()))?;
        let zone = match self.plan().schedules.time_zone.name() {
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| bad(e.to_string()))?,
            None => jiff::tz::TimeZone::system(),
        };
        civil
            .to_zoned(zone)
            .map(|z| z.timestamp())
            .map_err(|e| bad(e.to_string()))
    }
}
