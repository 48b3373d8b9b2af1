//! The commands that are not jobs of the engine's protocol: reads (snapshots, reports,
//! status), lock removal, runbooks, the plan, the audit log's check, schedule export and the
//! daemon.

use std::path::Path;

use lifeboat_core::Exit;
use lifeboat_engine::Engine;

use crate::{
    AuditAction, Cli, Command, Failure, KeyAction, PlanAction, ScheduleAction, TOKEN_ENV, key_cmd,
    plan_cmd, recover_cmd, render, wal_cmd,
};

/// Runs `cli.command`, which is not a job.
#[allow(clippy::too_many_lines)]
pub fn run(cli: &Cli, engine: &Engine, out: &render::Output, path: &Path) -> Result<u8, Failure> {
    match &cli.command {
        Command::Snapshots { asset } => {
            let snaps = engine.snapshots(asset.as_deref())?;
            out.snapshots(&snaps);
            Ok(Exit::Ok as u8)
        }
        Command::Reports { show } => {
            if let Some(id) = show {
                print!("{}", engine.drill_markdown(id)?);
            } else {
                out.reports(&engine.past_drills()?);
            }
            Ok(Exit::Ok as u8)
        }
        Command::Key {
            action: KeyAction::List,
        } => {
            key_cmd::list(&engine.keys()?, cli.json);
            Ok(Exit::Ok as u8)
        }
        Command::Wal { action } => wal_cmd::run(engine, action, out, path),
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
        } => {
            let code = recover_cmd::run(
                engine,
                cli.json,
                &recover_cmd::Args {
                    scenario,
                    dry_run: *dry_run,
                    yes: *yes,
                    drill: *drill,
                    report: report.as_deref(),
                },
            );
            let mode = match (*dry_run, *drill) {
                (true, _) => " --dry-run",
                (_, true) => " --drill",
                _ => "",
            };
            let (outcome, detail) = match &code {
                Ok(0) => ("ok", None),
                Ok(c) => ("failed", Some(format!("exit {c}"))),
                Err(f) => ("failed", Some(f.message.clone())),
            };
            engine.audit(
                &format!("recover {scenario}{mode}"),
                outcome,
                detail.as_deref(),
            );
            code
        }
        Command::Plan {
            action: PlanAction::Check,
        } => Ok(plan_cmd::check(engine, cli.json)),
        Command::Plan {
            action: PlanAction::Show,
        } => {
            plan_cmd::show(engine.plan(), cli.json);
            Ok(Exit::Ok as u8)
        }
        Command::Audit { action } => match action {
            AuditAction::Verify { file } => {
                audit_verify(cli, file.as_deref().unwrap_or(&engine.audit_path()))
            }
            AuditAction::Push => unreachable!("a job of the protocol"),
        },
        Command::Schedule {
            action:
                ScheduleAction::Export {
                    format,
                    output,
                    program,
                    image,
                    namespace,
                    secret,
                    config_map,
                },
        } => {
            let opts = lifeboat_server::export::ExportOptions {
                program: program.clone().unwrap_or_else(|| {
                    std::env::current_exe()
                        .map_or_else(|_| "lifeboat".to_owned(), |p| p.display().to_string())
                }),
                config: std::path::absolute(path)
                    .unwrap_or_else(|_| path.to_path_buf())
                    .display()
                    .to_string(),
                image: image.clone(),
                namespace: namespace.clone(),
                secret: secret.clone(),
                config_map: config_map.clone(),
            };
            let plan = engine.plan();
            match (format, output) {
                (lifeboat_server::export::ExportFormat::Systemd, Some(dir)) => {
                    let files = lifeboat_server::export::write_systemd(plan, &opts, dir).map_err(
                        |message| Failure {
                            message,
                            hint: None,
                            code: Exit::Error as u8,
                        },
                    )?;
                    for f in files {
                        println!("{}", dir.join(f).display());
                    }
                }
                (_, Some(_)) => {
                    return Err(Failure {
                        message: "--output is for --format systemd".to_owned(),
                        hint: Some("redirect the output to a file instead".to_owned()),
                        code: 2,
                    });
                }
                (format, None) => {
                    let text =
                        lifeboat_server::export::export(plan, *format, &opts).map_err(|e| {
                            Failure {
                                message: e.to_string(),
                                hint: Some(
                                    "use --format cron, which takes any cron expression".to_owned(),
                                ),
                                code: Exit::Error as u8,
                            }
                        })?;
                    print!("{text}");
                }
            }
            Ok(Exit::Ok as u8)
        }
        Command::Daemon {
            listen,
            token_file,
            grace,
            check_every,
        } => {
            let token = match token_file {
                Some(f) => Some(std::fs::read_to_string(f).map_err(|e| Failure {
                    message: format!("read the API token from {}: {e}", f.display()),
                    hint: None,
                    code: Exit::Error as u8,
                })?),
                None => std::env::var(TOKEN_ENV).ok(),
            }
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(lifeboat_core::Secret::new);
            let config = lifeboat_server::DaemonConfig {
                plan_path: path.to_path_buf(),
                listen: *listen,
                token,
                grace: *grace,
                check_every: *check_every,
            };
            lifeboat_server::run(config, engine.plan().clone())?;
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
        // The jobs of the protocol never come here (`Command::job`).
        Command::Init
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Dump { .. }
        | Command::Forget { .. }
        | Command::Prune { .. }
        | Command::Verify { .. }
        | Command::Copy { .. }
        | Command::Drill { .. }
        | Command::Catalog { .. }
        | Command::Key { .. }
        | Command::Kit { .. }
        | Command::Undelete { .. } => unreachable!("a job of the protocol"),
        // Answered before the plan is read (`main.rs`).
        Command::Completions { .. } | Command::Man { .. } | Command::HashPassword { .. } => {
            unreachable!("generated without a plan")
        }
    }
}

pub fn audit_verify(cli: &Cli, file: &std::path::Path) -> Result<u8, Failure> {
    let check = lifeboat_engine::audit::verify(file)?;
    if cli.json {
        println!("{}", serde_json::json!(check));
    } else {
        match &check.broken {
            None => println!(
                "audit log {}: {} line(s), chain intact",
                file.display(),
                check.valid
            ),
            Some(b) => eprintln!(
                "error: audit log {}: line {} breaks the chain: {}\n  hint: lines 1-{} are intact; compare with the copy in the repository (`lifeboat snapshots --asset _audit`)",
                file.display(),
                b.line,
                b.reason,
                check.valid
            ),
        }
    }
    Ok(if check.broken.is_none() {
        Exit::Ok as u8
    } else {
        Exit::Error as u8
    })
}
