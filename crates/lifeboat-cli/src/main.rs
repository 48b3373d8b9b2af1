//! The `lifeboat` command: parses arguments, loads the plan, calls the engine, renders the
//! result as text or JSON, and exits with a code from [`Exit`].

mod bars;
mod direct;
mod docs_cmd;
mod failure;
mod key_cmd;
mod plan_cmd;
mod recover_cmd;
mod render;
mod wal_cmd;

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use lifeboat_core::Exit;
use lifeboat_engine::{Engine, Job, ReadData, RestoreRequest};
use lifeboat_repo::Progress;

pub(crate) use failure::Failure;
use failure::{init_logging, report_error};

/// Lifeboat: back up, prove and restore everything a disaster-recovery plan names.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, after_help = exit_codes_help())]
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
        /// The newest snapshot taken before this time: 2026-12-05 10:00 (the plan's time
        /// zone) or 2026-12-05T10:00:00Z
        #[arg(long, value_name = "TIME", conflicts_with = "snapshot")]
        before: Option<String>,
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
        /// A cluster (postgres-cluster): recover to this time, e.g. "2026-12-05 10:00:00+00"
        /// (the plan's time zone without an offset)
        #[arg(long, value_name = "TIME", group = "recovery_target")]
        time: Option<String>,
        /// A cluster: recover to this WAL position, e.g. 0/3000060
        #[arg(long, value_name = "LSN", group = "recovery_target")]
        lsn: Option<String>,
        /// A cluster: recover up to and including this transaction
        #[arg(long, value_name = "XID", group = "recovery_target")]
        xid: Option<String>,
        /// A cluster: recover to this restore point (pg_create_restore_point)
        #[arg(long, value_name = "NAME", group = "recovery_target")]
        name: Option<String>,
        /// A cluster: recover everything archived (the default without --snapshot)
        #[arg(long, group = "recovery_target")]
        latest: bool,
        /// A cluster restored --to a directory holding an older copy of it: write only what
        /// differs from the base backup (the directory is partly restored should this fail)
        #[arg(long, requires = "to")]
        delta: bool,
    },
    /// Write a snapshot's raw artifact (e.g. a dump) to stdout, checked against its checksum
    Dump {
        asset: String,
        /// Artifact name [default: the snapshot's only artifact]
        artifact: Option<String>,
        /// Snapshot id (or a unique prefix) [default: the newest]
        #[arg(long)]
        snapshot: Option<String>,
        /// The newest snapshot taken before this time (as for restore)
        #[arg(long, value_name = "TIME", conflicts_with = "snapshot")]
        before: Option<String>,
    },
    /// Apply each asset's retention rules (a repository's own `retention` replaces them there)
    Forget {
        /// Show keep/remove decisions with reasons and change nothing
        #[arg(long)]
        dry_run: bool,
        /// In every repository of the plan, not only the primary (what the daemon does)
        #[arg(long)]
        every_repository: bool,
    },
    /// Remove data no snapshot uses any more
    Prune {
        #[arg(long)]
        dry_run: bool,
        /// In every repository of the plan, not only the primary (what the daemon does)
        #[arg(long)]
        every_repository: bool,
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
    /// The repository's keys (passwords): list, add, remove, change the current one; restic
    /// opens the repository with any of them
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Write the recovery kit: repositories, where their passwords come from, the restore
    /// order, the commands for Lifeboat and for restic, the key ids and the plan, as Markdown
    /// and a printable HTML page [default: .lifeboat/recovery-kit.md and .html]
    Kit {
        /// One file instead: .html for the page, anything else Markdown
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Put the repository passwords in the kit, in clear (asks to confirm; the files are
        /// made readable by their owner only)
        #[arg(long)]
        include_password: bool,
        /// Confirm --include-password without a question
        #[arg(long)]
        yes: bool,
    },
    /// The plan file: check it, or show it as tables
    Plan {
        #[command(subcommand)]
        action: PlanAction,
    },
    /// Make what was deleted from an S3 repository (with --repo) visible again: removes the
    /// delete markers placed since --since. Needs a versioned bucket, as every bucket with
    /// Object Lock is. Lock files stay deleted
    Undelete {
        /// When the deletes began: 2026-12-05 10:00 (the plan's time zone) or RFC 3339
        #[arg(long, value_name = "TIME")]
        since: String,
    },
    /// The audit log of every operation (.lifeboat/audit.jsonl, $LIFEBOAT_AUDIT_LOG)
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The plan's schedules, for an external scheduler
    Schedule {
        #[command(subcommand)]
        action: ScheduleAction,
    },
    /// PostgreSQL's WAL archive of a postgres-cluster asset: archive_command (push),
    /// restore_command (fetch), the stream, its status and the settings to turn it on
    Wal {
        #[command(subcommand)]
        action: WalAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell); no plan needed
    Completions { shell: clap_complete::Shell },
    /// Write man pages: lifeboat(1) to stdout, or one page per command into --out DIR
    Man {
        /// Directory for lifeboat.1 and lifeboat-<command>.1 (created)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the Argon2 hash of a dashboard user's password, for password-hash-file; no plan
    /// needed. The password is typed twice on a terminal or read from --password-file
    HashPassword {
        /// File whose first line is the password
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Run the plan's schedules, watch RPOs, notify, and serve the dashboard, /healthz,
    /// /metrics and a JSON API
    Daemon {
        /// Address to serve HTTP on; any but loopback needs an API token
        #[arg(long, default_value = "127.0.0.1:9184", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// File holding the API bearer token [or $LIFEBOAT_API_TOKEN]
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// On SIGTERM, how long running jobs may go on before they are stopped
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// How often the RPO watchdog looks at the repository
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        check_every: std::time::Duration,
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

impl Command {
    /// The engine job this command asks for; `None` for the commands that are not jobs.
    fn job(&self) -> Result<Option<Job>, Failure> {
        Ok(Some(match self {
            Self::Init => Job::Init,
            Self::Backup { assets } => Job::Backup {
                assets: assets.clone(),
            },
            Self::Restore {
                asset,
                snapshot,
                before,
                to,
                tables,
                dry_run,
                yes,
                skip_safety_snapshot,
                time,
                lsn,
                xid,
                name,
                latest,
                delta,
            } => Job::Restore(RestoreRequest {
                asset: asset.clone(),
                snapshot: snapshot.clone(),
                before: before.clone(),
                to: to.clone(),
                dry_run: *dry_run,
                yes: *yes,
                skip_safety_snapshot: *skip_safety_snapshot,
                tables: tables.clone(),
                // --repo has already made its repository the primary.
                repository: None,
                recovery: recovery_target(
                    time.as_ref(),
                    lsn.as_ref(),
                    xid.as_ref(),
                    name.as_ref(),
                    *latest,
                ),
                delta: *delta,
            }),
            Self::Dump {
                asset,
                artifact,
                snapshot,
                before,
            } => Job::Dump {
                asset: asset.clone(),
                snapshot: snapshot.clone(),
                before: before.clone(),
                artifact: artifact.clone(),
            },
            Self::Forget {
                dry_run,
                every_repository,
            } => Job::Forget {
                apply: !dry_run,
                everywhere: *every_repository,
            },
            Self::Prune {
                dry_run,
                every_repository,
            } => Job::Prune {
                dry_run: *dry_run,
                everywhere: *every_repository,
            },
            Self::Verify {
                assets,
                restore: true,
                snapshot,
                ..
            } => Job::VerifyRestore {
                assets: assets.clone(),
                snapshot: snapshot.clone(),
            },
            Self::Verify {
                assets, read_data, ..
            } => Job::Verify {
                assets: assets.clone(),
                read_data: *read_data,
            },
            Self::Copy { from, to } => Job::Copy {
                from: from.clone(),
                to: to.clone(),
            },
            Self::Drill {
                assets,
                report,
                parallel,
            } => Job::Drill {
                assets: assets.clone(),
                parallel: *parallel,
                report: report.clone(),
            },
            Self::Catalog {
                action: CatalogAction::Rebuild,
            } => Job::CatalogRebuild,
            Self::Audit {
                action: AuditAction::Push,
            } => Job::AuditPush,
            Self::Undelete { since } => Job::Undelete {
                since: since.clone(),
            },
            Self::Key {
                action: KeyAction::Add { new_password_file },
            } => Job::KeyAdd {
                password: key_cmd::new_password(new_password_file.as_deref())?,
            },
            Self::Key {
                action: KeyAction::Remove { id },
            } => Job::KeyRemove { id: id.clone() },
            Self::Key {
                action: KeyAction::Passwd { new_password_file },
            } => Job::KeyPasswd {
                password: key_cmd::new_password(new_password_file.as_deref())?,
            },
            Self::Kit {
                out,
                include_password,
                yes,
            } => {
                if *include_password && !yes {
                    key_cmd::confirm_passwords_in_kit()?;
                }
                Job::Kit {
                    out: out.clone(),
                    include_password: *include_password,
                }
            }
            Self::Key {
                action: KeyAction::List,
            }
            | Self::Snapshots { .. }
            | Self::Status
            | Self::Unlock { .. }
            | Self::Reports { .. }
            | Self::Recover { .. }
            | Self::Plan { .. }
            | Self::Audit { .. }
            | Self::Schedule { .. }
            | Self::Wal { .. }
            | Self::Completions { .. }
            | Self::Man { .. }
            | Self::HashPassword { .. }
            | Self::Daemon { .. } => return Ok(None),
        }))
    }
}

/// The one recovery target clap let through (the options are one group).
fn recovery_target(
    time: Option<&String>,
    lsn: Option<&String>,
    xid: Option<&String>,
    name: Option<&String>,
    latest: bool,
) -> Option<lifeboat_engine::RecoveryTarget> {
    use lifeboat_engine::RecoveryTarget as T;
    time.map(|t| T::Time(t.clone()))
        .or_else(|| lsn.map(|l| T::Lsn(l.clone())))
        .or_else(|| xid.map(|x| T::Xid(x.clone())))
        .or_else(|| name.map(|n| T::Name(n.clone())))
        .or(latest.then_some(T::Latest))
}

/// Environment variable holding the daemon's API token.
const TOKEN_ENV: &str = "LIFEBOAT_API_TOKEN";

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Every key, the one the plan's password opens marked
    List,
    /// Add a key; the new password from --new-password-file or typed on a terminal
    Add {
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// Remove a key (never the one the plan's password opens)
    Remove {
        /// Key id, or a unique prefix of it (`lifeboat key list`)
        id: String,
    },
    /// Replace the plan's key by a new password: added and proven first, then the old key goes
    Passwd {
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum WalAction {
    /// archive_command: store a WAL file (and the segments already marked ready); exit 0
    /// once it is durably in the repository
    Push {
        asset: String,
        /// The file, as PostgreSQL's %p gives it
        path: PathBuf,
    },
    /// restore_command: write an archived WAL file to DEST; exit 1 when the archive does not
    /// hold it
    Fetch {
        asset: String,
        /// The file's name (%f)
        name: String,
        /// Where PostgreSQL wants it (%p)
        dest: PathBuf,
    },
    /// How far the archive reaches: newest segment and push, backlog, push latency, the
    /// recovery window and any gaps. Exit 3 on a gap or without a base backup
    Status { asset: Option<String> },
    /// Print the postgresql.conf lines that archive into the asset
    Setup { asset: String },
    /// Fold the archive's older pushes into one snapshot per hour (the last day) or per day,
    /// keeping the newest 8 as they are (pushes do this by themselves above 32)
    Compact { asset: String },
    /// Stream the WAL of an asset with wal = "stream" (pg_receivewal on a replication slot)
    /// into the repository until stopped; the daemon does this by itself
    Stream { asset: String },
}

#[derive(Debug, Subcommand)]
enum CatalogAction {
    /// Empty the catalog and index the repository again
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the audit log's hash chain; names the first line that breaks it
    Verify {
        /// The log to check [default: the plan's, .lifeboat/audit.jsonl or $LIFEBOAT_AUDIT_LOG]
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Copy the audit log into the repository now (the daemon does it after jobs)
    Push,
}

#[derive(Debug, Subcommand)]
enum ScheduleAction {
    /// Write the plan's schedules for systemd, cron or Kubernetes
    Export {
        /// systemd (service + timer units), cron (crontab lines) or k8s (CronJob manifests)
        #[arg(long, value_parser = <lifeboat_server::export::ExportFormat as std::str::FromStr>::from_str)]
        format: lifeboat_server::export::ExportFormat,
        /// systemd: write the unit files into this directory instead of printing them
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// The lifeboat program the units and crontab run [default: this one]
        #[arg(long, value_name = "PATH")]
        program: Option<String>,
        /// k8s: the container image
        #[arg(long, default_value = "lifeboat:latest")]
        image: String,
        /// k8s: the namespace
        #[arg(long)]
        namespace: Option<String>,
        /// k8s: the Secret holding the environment variables the plan names
        #[arg(long, default_value = "lifeboat-secrets")]
        secret: String,
        /// k8s: the ConfigMap holding lifeboat.toml
        #[arg(long, default_value = "lifeboat-plan")]
        config_map: String,
    },
}

/// The exit codes for `--help`, from the one list in `lifeboat_core::Exit`.
fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:");
    for exit in Exit::ALL {
        text.push_str(&format!("\n  {:<4}", exit.code()));
        let mut width = 7;
        for word in exit.meaning().split(' ') {
            if width + 1 + word.len() > 92 {
                text.push_str("\n      ");
                width = 6;
            }
            text.push(' ');
            text.push_str(word);
            width += 1 + word.len();
        }
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    // The daemon handles its own signals: it lets running jobs finish first. A WAL stream
    // stores what it received last before it exits.
    if matches!(
        cli.command,
        Command::Wal {
            action: WalAction::Stream { .. }
        }
    ) {
        let _ =
            ctrlc::set_handler(|| wal_cmd::STOP.store(true, std::sync::atomic::Ordering::SeqCst));
    } else if !matches!(cli.command, Command::Daemon { .. }) {
        let _ = ctrlc::set_handler(|| {
            lifeboat_engine::on_interrupt();
            eprintln!("interrupted");
            std::process::exit(i32::from(Exit::Interrupted.code()));
        });
    }
    let outcome = run(&cli);
    // (The daemon cancels its jobs this way too, and then returns on its own.)
    if lifeboat_engine::interrupted() && !matches!(cli.command, Command::Daemon { .. }) {
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

fn plan_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("lifeboat.toml"))
}

fn run(cli: &Cli) -> Result<u8, Failure> {
    // Generated from the CLI's definition: no plan is read.
    match &cli.command {
        Command::Completions { shell } => return docs_cmd::completions(*shell),
        Command::Man { out } => return docs_cmd::man(out.as_deref()),
        Command::HashPassword { password_file } => {
            return key_cmd::print_password_hash(password_file.as_deref());
        }
        _ => {}
    }
    let path = plan_path(cli);
    if let Command::Audit {
        action: AuditAction::Verify { file: Some(file) },
    } = &cli.command
    {
        return direct::audit_verify(cli, file);
    }
    let plan = lifeboat_plan::load(&path)?;
    let progress = if !cli.json && !cli.quiet && std::io::stderr().is_terminal() {
        Progress::to(std::sync::Arc::new(bars::Bars))
    } else {
        Progress::hidden()
    };
    let mut engine = Engine::new(plan, progress);
    if let Some(name) = &cli.repo {
        engine.use_repository(name)?;
    }
    let out = render::Output { json: cli.json };
    let Some(job) = cli.command.job()? else {
        return direct::run(cli, &engine, &out, &path);
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let outcome = engine.run_job_to(&job, "cli", &mut lock)?;
    let _ = lock.flush();
    drop(lock);
    out.outcome(&engine, &outcome);
    Ok(outcome.exit())
}
