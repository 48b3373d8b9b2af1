//! The job protocol the CLI and the daemon share: a [`Job`] names what to run, and
//! [`Engine::run_job`] runs it the one way both callers need. It tells the notifiers that wait
//! for it that the job starts, runs it, records the outcome (the run in the catalog, events
//! and notifications, one audit line per operation) whether it worked or not, and returns an
//! [`Outcome`] whose [`Outcome::exit`] is the process's exit status. Callers only render.

use std::{io::Write, path::PathBuf};

use jiff::Timestamp;
use lifeboat_core::{Exit, Secret};
use lifeboat_repo::PruneSummary;

use crate::{
    EngineError,
    actions::{RestoreReport, RestoreRequest},
    catalog::Rebuilt,
    copy::CopyOutcome,
    drill::SandboxRestore,
    engine::Engine,
    jobs::{BackupReport, ForgetReport, InitReport},
    recover::{RecoverReport, RecoverRequest, RecoverUi, StepRecord},
    report::DrillReport,
    verify::{ReadData, VerifyReport},
};

/// A job, as the CLI's commands and the daemon's schedules ask for it.
#[derive(Debug, Clone)]
pub enum Job {
    /// Create the plan's repositories that are missing.
    Init,
    /// Back up these assets (all when empty).
    Backup { assets: Vec<String> },
    /// Check the repository and these assets' snapshots (all when empty).
    Verify {
        assets: Vec<String>,
        read_data: Option<ReadData>,
    },
    /// Restore these assets' newest snapshots (or `snapshot`) into sandboxes and check them.
    VerifyRestore {
        assets: Vec<String>,
        snapshot: Option<String>,
    },
    /// A timed drill of these assets (all when empty), saved in the repository and recorded;
    /// then also written to `report` when given (Markdown, JSON or HTML by its extension).
    Drill {
        assets: Vec<String>,
        parallel: usize,
        report: Option<PathBuf>,
    },
    /// Apply retention; only a plan when `apply` is false. In the primary (`--repo`), or in
    /// every repository with its own rules.
    Forget { apply: bool, everywhere: bool },
    /// Remove data no snapshot uses, in the primary or in every repository.
    Prune { dry_run: bool, everywhere: bool },
    /// Copy snapshots: `from` → `to`, the primary → `to`, or into every `copy-from`
    /// repository when `to` is `None`.
    Copy {
        from: Option<String>,
        to: Option<String>,
    },
    /// Restore an asset.
    Restore(RestoreRequest),
    /// Write an artifact of a snapshot (the newest unless `snapshot`) to the caller's output.
    Dump {
        asset: String,
        snapshot: Option<String>,
        /// The newest snapshot taken before this time instead.
        before: Option<String>,
        artifact: Option<String>,
    },
    /// Run a scenario unattended and keep its incident report beside the plan: rehearsed on
    /// sandboxes (`recover NAME --drill --yes`), or with `live` against the live targets
    /// (`recover NAME --yes`, asked for on the dashboard).
    Scenario { scenario: String, live: bool },
    /// Add a key (a password) to the repository.
    KeyAdd { password: Secret },
    /// Remove the key whose id starts with `id`.
    KeyRemove { id: String },
    /// Replace the current key by one with this password (add, prove, then remove).
    KeyPasswd { password: Secret },
    /// Write the recovery kit (to `out`, else beside the plan); passwords only when asked.
    Kit {
        out: Option<PathBuf>,
        include_password: bool,
    },
    /// Rebuild the catalog from the repository.
    CatalogRebuild,
    /// Copy the audit log into the repository.
    AuditPush,
    /// Remove the delete markers placed since `since` (a time as `--before` takes it) in the
    /// repository's S3 bucket, so that deleted objects are visible again.
    Undelete { since: String },
}

impl Job {
    /// The job's name in runs, notifications and logs.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Backup { .. } => "backup",
            Self::Verify { .. } | Self::VerifyRestore { .. } => "verify",
            Self::Drill { .. } => "drill",
            Self::Forget { .. } => "forget",
            Self::Prune { .. } => "prune",
            Self::Copy { .. } => "copy",
            Self::Restore(_) => "restore",
            Self::Dump { .. } => "dump",
            Self::Scenario { .. } => "recover",
            Self::KeyAdd { .. } | Self::KeyRemove { .. } | Self::KeyPasswd { .. } => "key",
            Self::Kit { .. } => "kit",
            Self::CatalogRebuild => "catalog",
            Self::AuditPush => "audit",
            Self::Undelete { .. } => "undelete",
        }
    }

    /// The operation as the audit log records it: the command with what it names, never a
    /// value that may hold a secret (a restore's `--to` is "another target").
    #[must_use]
    pub fn what(&self) -> String {
        let with = |verb: &str, names: &[String]| {
            if names.is_empty() {
                verb.to_owned()
            } else {
                format!("{verb} {}", names.join(" "))
            }
        };
        match self {
            Self::Init => "init".to_owned(),
            Self::Backup { assets } => with("backup", assets),
            Self::Verify { assets, .. } => with("verify", assets),
            Self::VerifyRestore { assets, .. } => with("verify --restore", assets),
            Self::Drill { assets, .. } => with("drill", assets),
            Self::Forget { apply: true, .. } => "forget".to_owned(),
            Self::Forget { apply: false, .. } => "forget --dry-run".to_owned(),
            Self::Prune { dry_run: false, .. } => "prune".to_owned(),
            Self::Prune { dry_run: true, .. } => "prune --dry-run".to_owned(),
            Self::Copy { .. } => "copy".to_owned(),
            Self::Restore(req) => {
                let mut what = format!("restore {}", req.asset);
                if let Some(s) = &req.snapshot {
                    what.push_str(&format!(" --snapshot {s}"));
                }
                if let Some(t) = &req.before {
                    what.push_str(&format!(" --before {t:?}"));
                }
                if req.dry_run {
                    what.push_str(" --dry-run");
                }
                // The target may be a URL: only whether one was given is recorded.
                if req.to.is_some() {
                    what.push_str(" --to (another target)");
                }
                what
            }
            Self::Dump {
                asset, artifact, ..
            } => match artifact {
                Some(a) => format!("dump {asset} {a}"),
                None => format!("dump {asset}"),
            },
            Self::Scenario {
                scenario,
                live: false,
            } => format!("recover {scenario} --drill"),
            Self::Scenario {
                scenario,
                live: true,
            } => format!("recover {scenario} --yes"),
            Self::KeyAdd { .. } => "key add".to_owned(),
            Self::KeyRemove { id } => format!("key remove {id}"),
            Self::KeyPasswd { .. } => "key passwd".to_owned(),
            Self::Kit {
                include_password, ..
            } => if *include_password {
                "kit --include-password"
            } else {
                "kit"
            }
            .to_owned(),
            Self::CatalogRebuild => "catalog rebuild".to_owned(),
            Self::AuditPush => "audit push".to_owned(),
            Self::Undelete { since } => format!("undelete --since {since}"),
        }
    }

    /// The asset a job is about when it names exactly one (Healthchecks pings per asset).
    fn single_asset(&self) -> Option<&str> {
        match self {
            Self::Backup { assets } if assets.len() == 1 => Some(&assets[0]),
            _ => None,
        }
    }

    /// Whether the notifiers hear that the job starts: the jobs that report their outcome to
    /// them.
    const fn announced(&self) -> bool {
        matches!(
            self,
            Self::Backup { .. } | Self::Verify { .. } | Self::Drill { .. }
        )
    }
}

/// What a job gave, for its caller to render.
#[derive(Debug)]
pub enum Outcome {
    Init(Vec<InitReport>),
    Backup(BackupReport),
    Verify(VerifyReport),
    SandboxRestores(Vec<SandboxRestore>),
    /// The drill and the id of the snapshot it was saved as.
    Drill {
        report: DrillReport,
        saved: String,
    },
    Forget {
        reports: Vec<ForgetReport>,
        dry_run: bool,
    },
    /// Per repository, by name.
    Prune {
        summaries: Vec<(String, PruneSummary)>,
        dry_run: bool,
    },
    Copies(Vec<CopyOutcome>),
    Restore(RestoreReport),
    /// Bytes written.
    Dump(u64),
    /// A scenario run unattended, and where its incident report went.
    Scenario {
        report: RecoverReport,
        written: Option<PathBuf>,
    },
    /// The new key's id.
    KeyAdded(String),
    /// The removed key's id.
    KeyRemoved(String),
    /// The new key's id and the removed one's.
    PasswordChanged {
        new: String,
        old: String,
    },
    /// Where the kit went.
    Kit(Vec<PathBuf>),
    CatalogRebuilt(Rebuilt),
    /// The snapshot holding the audit log; `None` when there is no log yet.
    AuditPushed(Option<String>),
    /// What `undelete` put back in which repository.
    Undeleted {
        repository: String,
        undeleted: lifeboat_repo::Undeleted,
    },
}

impl Outcome {
    /// The exit status the job ends with (a job that failed as a whole is an `EngineError`,
    /// whose status comes with it).
    #[must_use]
    pub fn exit(&self) -> u8 {
        match self {
            Self::Backup(r) => r.exit_code(),
            Self::Verify(r) => r.exit_code(),
            Self::SandboxRestores(r) if !r.iter().all(|r| r.ok) => Exit::Error as u8,
            Self::Drill { report, .. } if !report.passed => Exit::Error as u8,
            Self::Copies(o) if o.iter().any(|o| o.error.is_some()) => Exit::Error as u8,
            Self::Scenario { report, .. } if !(report.ok && report.rto_met()) => Exit::Error as u8,
            _ => Exit::Ok as u8,
        }
    }
}

impl Engine {
    /// Runs `job` and records it; `trigger` says who asked (`cli`, `schedule`, `api`).
    ///
    /// # Errors
    /// The job failed as a whole; it is recorded before it is returned.
    pub fn run_job(&self, job: &Job, trigger: &str) -> Result<Outcome, EngineError> {
        self.run_job_to(job, trigger, &mut std::io::sink())
    }

    /// [`Self::run_job`], with `out` receiving what a job writes (a dump's artifact).
    ///
    /// # Errors
    /// The job failed as a whole; it is recorded before it is returned.
    pub fn run_job_to(
        &self,
        job: &Job,
        trigger: &str,
        out: &mut dyn Write,
    ) -> Result<Outcome, EngineError> {
        let started = Timestamp::now();
        if job.announced() {
            self.job_started(job.name(), job.single_asset());
        }
        let result = self.execute(job, out);
        let recorded = match &result {
            Err(e) => Err(e),
            Ok(Outcome::Backup(r)) => {
                self.record_backup(r, started, trigger);
                return result;
            }
            Ok(Outcome::Verify(r)) => {
                self.record_verify(r, started, trigger);
                return result;
            }
            Ok(Outcome::Drill { report, .. }) => {
                self.record_drill(report, trigger);
                if let Job::Drill {
                    report: Some(path), ..
                } = job
                {
                    // The drill is done and recorded whatever happens to this copy of it.
                    let text = report.render_for(path)?;
                    std::fs::write(path, text).map_err(|e| {
                        EngineError::usage(
                            format!("write the report to {}: {e}", path.display()),
                            Some("choose a writable path; the drill itself is done"),
                        )
                    })?;
                }
                return result;
            }
            Ok(Outcome::Copies(o)) => {
                self.record_copies(o, started, trigger);
                return result;
            }
            Ok(Outcome::Scenario { report, .. }) => {
                self.record_scenario(report, started, trigger);
                return result;
            }
            Ok(_) => Ok(()),
        };
        self.record_job(job.name(), &job.what(), started, recorded, trigger);
        result
    }

    fn execute(&self, job: &Job, out: &mut dyn Write) -> Result<Outcome, EngineError> {
        Ok(match job {
            Job::Init => Outcome::Init(self.init()?),
            Job::Backup { assets } => Outcome::Backup(self.backup(assets)?),
            Job::Verify { assets, read_data } => Outcome::Verify(self.verify(assets, *read_data)?),
            Job::VerifyRestore { assets, snapshot } => {
                Outcome::SandboxRestores(self.verify_restore(assets, snapshot.as_deref(), 1)?)
            }
            Job::Drill {
                assets, parallel, ..
            } => {
                let drill = self.drill(assets, *parallel)?;
                let saved = self.save_drill(&drill)?;
                Outcome::Drill {
                    report: drill,
                    saved,
                }
            }
            Job::Forget { apply, everywhere } => Outcome::Forget {
                reports: if *everywhere {
                    self.forget_everywhere(*apply)?
                } else {
                    self.forget(*apply)?
                },
                dry_run: !apply,
            },
            Job::Prune {
                dry_run,
                everywhere,
            } => Outcome::Prune {
                summaries: if *everywhere {
                    self.prune_everywhere(*dry_run)?
                } else {
                    vec![(self.primary().name.clone(), self.prune(*dry_run)?)]
                },
                dry_run: *dry_run,
            },
            Job::Copy { from, to } => Outcome::Copies(match (from, to) {
                (Some(from), Some(to)) => vec![self.copy(from, to)?],
                (None, Some(to)) => vec![self.copy(&self.primary().name, to)?],
                (_, None) => self.copy_all()?,
            }),
            Job::Restore(req) => Outcome::Restore(self.restore(req)?),
            Job::Dump {
                asset,
                snapshot,
                before,
                artifact,
            } => Outcome::Dump(self.dump(
                asset,
                snapshot.as_deref(),
                before.as_deref(),
                artifact.as_deref(),
                out,
            )?),
            Job::Scenario { scenario, live } => {
                let req = RecoverRequest {
                    scenario: scenario.clone(),
                    dry_run: false,
                    yes: true,
                    drill: !live,
                };
                let report = self.recover(&req, &mut Unattended)?;
                let written = self.save_incident(&report, None)?;
                Outcome::Scenario { report, written }
            }
            Job::KeyAdd { password } => Outcome::KeyAdded(self.add_key(password)?),
            Job::KeyRemove { id } => Outcome::KeyRemoved(self.remove_key(id)?),
            Job::KeyPasswd { password } => {
                let (new, old) = self.change_password(password)?;
                Outcome::PasswordChanged { new, old }
            }
            Job::Kit {
                out,
                include_password,
            } => Outcome::Kit(self.write_kit(out.as_deref(), *include_password)?),
            Job::CatalogRebuild => Outcome::CatalogRebuilt(self.rebuild_catalog()?),
            Job::AuditPush => Outcome::AuditPushed(self.save_audit()?),
            Job::Undelete { since } => {
                let since = self.parse_time(since)?;
                // Not opened: its config file may be among what was deleted.
                let config = self.repo_config(self.primary())?;
                Outcome::Undeleted {
                    repository: config.name.clone(),
                    undeleted: config.undelete(since)?,
                }
            }
        })
    }
}

/// A recovery nobody watches (the daemon's scheduled drills): no timeline, and no question is
/// ever answered yes.
struct Unattended;

impl RecoverUi for Unattended {
    fn step_started(&mut self, _step: &StepRecord, _total: usize) {}

    fn step_finished(&mut self, step: &StepRecord, total: usize) {
        tracing::info!(
            "step {}/{total} {}: {}",
            step.index,
            step.status.label(),
            step.detail.as_deref().unwrap_or("")
        );
    }

    fn ask(&mut self, _question: &str) -> bool {
        false
    }
}
