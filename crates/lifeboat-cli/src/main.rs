//! The `lifeboat` command: parses arguments, loads the plan, calls the engine, renders the
//! result as text or JSON, and exits with a code from [`Exit`].

mod plan_cmd;
mod recover_cmd;
mod render;

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use lifeboat_engine::{Engine, EngineError, ReadData, RestoreRequest};
use lifeboat_repo::ProgressMode;

const EXIT_CODES: &str = "\
Exit codes:
  0    ok
  1    error (for recover, a step failed; for plan check, the plan has errors)
  2    usage error (unknown option, bad value)
  3    partial: some assets failed or had warnings; for status, an RPO breach, a copy
       lagging more than the RPO, or a restore forecast over the RTO; for plan check,
       warnings only
  10   no repository at the plan's location
  12   wrong repository password
  130  interrupted";

/// Lifeboat: back up, prove and restore everything a disaster-recovery plan names.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, after_help = EXIT_CODES)]
struct Cli {
    /// The plan file [default: ./lifeboat.toml]
    #[arg(long, global = true, env = "LIFEBOAT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    json: bool,

    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Use this repository of the plan instead of the first (e.g. the off-site copy after the
    /// primary is lost)
    #[arg(long, global = true, value_name = "NAME")]
    repo: Option<String>,

    /// Print more (repeat for debug output)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the plan's repositories (refuses to overwrite one)
    Init,
    /// Back up all assets, or the ones named
    Backup {
        /// Assets to back up [default: all]
        assets: Vec<String>,
    },
    /// List snapshots
    Snapshots {
        /// Only this asset's snapshots
        #[arg(long)]
        asset: Option<String>,
    },
    /// Restore an asset from a snapshot
    Restore {
        asset: String,
        /// Snapshot id (or a unique prefix) [default: the newest]
        #[arg(long)]
        snapshot: Option<String>,
        /// Restore here instead of over the original: a directory (files), a file (command,
        /// sqlite) or a server URL (postgres://…/db, mysql://…/db, redis://…)
        #[arg(long, value_name = "TARGET")]
        to: Option<PathBuf>,
        /// Restore only this table (repeatable; database assets, with --to another database)
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Show what would be done and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Confirm restoring over the original
        #[arg(long)]
        yes: bool,
        /// Do not take a snapshot of the target before overwriting it
        #[arg(long)]
        skip_safety_snapshot: bool,
    },
    /// Write a snapshot's raw artifact (e.g. a dump) to stdout, checked against its checksum
    Dump {
        asset: String,
        /// Artifact name [default: the snapshot's only artifact]
        artifact: Option<String>,
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// Apply each asset's retention rules
    Forget {
        /// Show keep/remove decisions with reasons and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove data no snapshot uses any more
    Prune {
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the repository, each asset's manifests and newest size; --read-data reads the data too
    Verify {
        /// Assets whose snapshots to examine [default: all]
        assets: Vec<String>,
        /// Read and authenticate all data the snapshots use, and every artifact against its
        /// checksum; --read-data=N% reads a random N% of the packs instead (a cheap daily run)
        #[arg(
            long,
            value_name = "N%",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "100%",
            value_parser = <ReadData as std::str::FromStr>::from_str
        )]
        read_data: Option<ReadData>,
        /// Restore each asset into a sandbox, compare it with its manifest and run its checks
        #[arg(long, conflicts_with = "read_data")]
        restore: bool,
        /// With --restore and one asset: this snapshot instead of the newest
        #[arg(long, requires = "restore", value_name = "ID")]
        snapshot: Option<String>,
    },
    /// Every asset: newest snapshot, its age against the RPO, restore forecast against the RTO,
    /// and how far each copy lags
    Status,
    /// Copy snapshots between repositories (those one lacks); without options, bring every
    /// copy-from repository up to date
    Copy {
        /// Source repository [default: the primary]
        #[arg(long, value_name = "REPO", requires = "to")]
        from: Option<String>,
        /// Target repository
        #[arg(long, value_name = "REPO")]
        to: Option<String>,
    },
    /// Remove stale locks (older than 30 minutes, or of a process of this host that is gone)
    Unlock {
        /// Remove every lock, also live ones: only when you know their jobs are gone
        #[arg(long)]
        all: bool,
    },
    /// Restore assets into sandboxes, check them, and time it against the plan's RTO and RPO
    Drill {
        /// Assets to drill [default: all, P0 first]
        assets: Vec<String>,
        /// Also write the report here: .md, .json or .html (one self-contained page)
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Assets restored at once
        #[arg(long, default_value_t = 1, value_name = "N")]
        parallel: usize,
    },
    /// Past drills, kept in the repository; --show ID prints one as Markdown
    Reports {
        #[arg(long, value_name = "ID")]
        show: Option<String>,
    },
    /// The catalog: a local index of the repository (.lifeboat/catalog.db, $LIFEBOAT_CATALOG)
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Run a scenario of the plan (a runbook): its steps in order, stopping at the first
    /// failure, with a timeline and an incident report
    Recover {
        /// The scenario's name ([[scenarios]] name = ...)
        scenario: String,
        /// Show each step and what it would do; change nothing
        #[arg(long, conflicts_with = "drill")]
        dry_run: bool,
        /// Ask nothing: restore over live targets (safety snapshots are still taken) and list
        /// confirm steps as follow-up items. Needed when stdin is not a terminal
        #[arg(long)]
        yes: bool,
        /// Rehearse on sandboxes: restores and checks go to scratch servers, steps that act on
        /// live services are skipped
        #[arg(long)]
        drill: bool,
        /// Write the incident report here, .md or .json [default:
        /// .lifeboat/incidents/SCENARIO-TIME.md beside the plan; none for --dry-run]
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// The plan file: check it, or show it as tables
    Plan {
        #[command(subcommand)]
        action: PlanAction,
    },
}

#[derive(Debug, Subcommand)]
enum PlanAction {
    /// Validate the plan and lint it (schedules, retention, targets, off-site copies, restore
    /// forecasts, risky scenario steps) without touching a server or a repository. Exit 0
    /// clean, 3 warnings only, 1 errors
    Check,
    /// The plan as tables: repositories, assets, notifications, scenarios
    Show,
}

#[derive(Debug, Subcommand)]
enum CatalogAction {
    /// Empty the catalog and index the repository again
    Rebuild,
}

/// Process exit codes, one place (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Error = 1,
    Partial = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        Self::from(e as u8)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let _ = ctrlc::set_handler(|| {
        lifeboat_engine::on_interrupt();
        eprintln!("interrupted");
        std::process::exit(130);
    });
    let outcome = run(&cli);
    if lifeboat_engine::interrupted() {
        // The handler is cleaning up and exits with 130; the job's error is only its echo.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            report_error(&cli, &err);
            ExitCode::from(err.code)
        }
    }
}

fn init_logging(cli: &Cli) {
    // rustic's own log lines repeat, in its words, findings Lifeboat reports in its own (with
    // asset and snapshot): shown only from -vv.
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error,rustic_core=off",
        (false, 0) => "warn,rustic_core=off",
        (false, 1) => "info,rustic_core=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .try_init();
}

/// An error on its way out: message, optional hint, exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
            code: e.exit_code(),
        }
    }
}

impl From<lifeboat_plan::PlanError> for Failure {
    fn from(e: lifeboat_plan::PlanError) -> Self {
        // The plan error's Display already carries its hint line.
        Self {
            message: e.to_string(),
            hint: None,
            code: Exit::Error as u8,
        }
    }
}

fn report_error(cli: &Cli, err: &Failure) {
    if cli.json {
        let doc = serde_json::json!({
            "error": err.message,
            "hint": err.hint,
            "exit-code": err.code,
        });
        println!("{doc}");
    } else {
        eprintln!("error: {}", err.message);
        if let Some(h) = &err.hint {
            eprintln!("  hint: {h}");
        }
    }
}

fn plan_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("lifeboat.toml"))
}

fn run(cli: &Cli) -> Result<u8, Failure> {
    let path = plan_path(cli);
    let plan = lifeboat_plan::load(&path)?;
    let progress = if !cli.json && !cli.quiet && std::io::stderr().is_terminal() {
        ProgressMode::Bars
    } else {
        ProgressMode::Hidden
    };
    let mut engine = Engine::new(plan, progress);
    if let Some(name) = &cli.repo {
        engine.use_repository(name)?;
    }
    let out = render::Output { json: cli.json };
    match &cli.command {
        Command::Init => {
            let reports = engine.init()?;
            out.init(&reports);
            Ok(Exit::Ok as u8)
        }
        Command::Backup { assets } => {
            let report = engine.backup(assets)?;
            out.backup(&report);
            Ok(report.exit_code())
        }
        Command::Snapshots { asset } => {
            let snaps = engine.snapshots(asset.as_deref())?;
            out.snapshots(&snaps);
            Ok(Exit::Ok as u8)
        }
        Command::Restore {
            asset,
            snapshot,
            to,
            dry_run,
            yes,
            skip_safety_snapshot,
            tables,
        } => {
            let req = RestoreRequest {
                asset: asset.clone(),
                snapshot: snapshot.clone(),
                to: to.clone(),
                dry_run: *dry_run,
                yes: *yes,
                skip_safety_snapshot: *skip_safety_snapshot,
                tables: tables.clone(),
                // --repo has already made its repository the primary.
                repository: None,
            };
            let report = engine.restore(&req)?;
            out.restore(&report);
            Ok(Exit::Ok as u8)
        }
        Command::Dump {
            asset,
            artifact,
            snapshot,
        } => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            let bytes = engine.dump(asset, snapshot.as_deref(), artifact.as_deref(), &mut lock)?;
            let _ = lock.flush();
            tracing::info!("wrote {bytes} bytes");
            Ok(Exit::Ok as u8)
        }
        Command::Forget { dry_run } => {
            let reports = engine.forget(!dry_run)?;
            out.forget(&reports, *dry_run);
            Ok(Exit::Ok as u8)
        }
        Command::Prune { dry_run } => {
            let summary = engine.prune(*dry_run)?;
            out.prune(&summary, *dry_run);
            Ok(Exit::Ok as u8)
        }
        Command::Verify {
            assets,
            restore: true,
            snapshot,
            ..
        } => {
            let results = engine.verify_restore(assets, snapshot.as_deref(), 1)?;
            out.sandbox_restores(&results);
            Ok(if results.iter().all(|r| r.ok) {
                Exit::Ok as u8
            } else {
                Exit::Error as u8
            })
        }
        Command::Verify {
            assets, read_data, ..
        } => {
            let report = engine.verify(assets, *read_data)?;
            out.verify(&report);
            Ok(report.exit_code())
        }
        Command::Drill {
            assets,
            report,
            parallel,
        } => {
            let drill = engine.drill(assets, *parallel)?;
            if let Some(path) = report {
                let text = drill.render_for(path)?;
                std::fs::write(path, text).map_err(|e| Failure {
                    message: format!("write the report to {}: {e}", path.display()),
                    hint: Some("choose a writable path; the drill itself is done".into()),
                    code: Exit::Error as u8,
                })?;
            }
            let saved = engine.save_drill(&drill)?;
            out.drill(&drill, &saved);
            Ok(if drill.passed {
                Exit::Ok as u8
            } else {
                Exit::Error as u8
            })
        }
        Command::Reports { show } => {
            if let Some(id) = show {
                print!("{}", engine.drill_markdown(id)?);
            } else {
                out.reports(&engine.past_drills()?);
            }
            Ok(Exit::Ok as u8)
        }
        Command::Catalog {
            action: CatalogAction::Rebuild,
        } => {
            let drills = engine.rebuild_catalog()?;
            if cli.json {
                println!("{}", serde_json::json!({ "drills": drills }));
            } else {
                println!(
                    "catalog {} rebuilt: {drills} drill report(s) indexed",
                    engine.catalog_path().display()
                );
            }
            Ok(Exit::Ok as u8)
        }
        Command::Copy { from, to } => {
            let outcomes = match (from, to) {
                (Some(from), Some(to)) => vec![engine.copy(from, to)?],
                (None, Some(to)) => vec![engine.copy(&engine.primary().name, to)?],
                (_, None) => engine.copy_all()?,
            };
            out.copies(&outcomes);
            Ok(if outcomes.iter().all(|o| o.error.is_none()) {
                Exit::Ok as u8
            } else {
                Exit::Error as u8
            })
        }
        Command::Unlock { all } => {
            let removed = engine.unlock(*all)?;
            out.unlocked(&removed);
            Ok(Exit::Ok as u8)
        }
        Command::Recover {
            scenario,
            dry_run,
            yes,
            drill,
            report,
        } => recover_cmd::run(
            &engine,
            cli.json,
            &recover_cmd::Args {
                scenario,
                dry_run: *dry_run,
                yes: *yes,
                drill: *drill,
                report: report.as_deref(),
            },
        ),
        Command::Plan {
            action: PlanAction::Check,
        } => Ok(plan_cmd::check(&engine, cli.json)),
        Command::Plan {
            action: PlanAction::Show,
        } => {
            plan_cmd::show(engine.plan(), cli.json);
            Ok(Exit::Ok as u8)
        }
        Command::Status => {
            let status = engine.status()?;
            out.status(&status);
            Ok(
                if status.iter().any(|s| {
                    s.breach || s.forecast_over_target || s.copies.iter().any(|c| c.breach)
                }) {
                    Exit::Partial as u8
                } else {
                    Exit::Ok as u8
                },
            )
        }
    }
}
