//! `lifeboat wal`: PostgreSQL's archive and restore commands, the stream, the archive's
//! status and the settings that turn archiving on.
//!
//! `push` and `fetch` are run by PostgreSQL, which reads only their exit status: 0 when the
//! file is stored (or written to `%p`), 1 otherwise. A missing file in `fetch` is an ordinary
//! answer during recovery (it is how PostgreSQL learns the archive ends), so it prints one
//! short line; real failures print the error and its hint like every command.

use std::{path::Path, sync::atomic::AtomicBool};

use lifeboat_core::Exit;
use lifeboat_engine::{Engine, WalStatus};

use crate::{Failure, WalAction, render};

/// Set by SIGINT or SIGTERM while `wal stream` runs.
pub static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(
    engine: &Engine,
    action: &WalAction,
    out: &render::Output,
    plan: &Path,
) -> Result<u8, Failure> {
    match action {
        WalAction::Push { asset, path } => {
            let done = engine.wal_push(asset, path)?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&done).unwrap_or_default()
                );
            } else if let Some(id) = &done.snapshot {
                tracing::info!(
                    "wal push {asset}: stored {} file(s) in snapshot {}",
                    done.stored.len(),
                    &id[..8]
                );
            }
            Ok(Exit::Ok as u8)
        }
        WalAction::Fetch { asset, name, dest } => {
            if engine.wal_fetch(asset, name, dest)? {
                Ok(Exit::Ok as u8)
            } else {
                eprintln!("wal fetch {asset}: {name} is not in the archive");
                Ok(Exit::Error as u8)
            }
        }
        WalAction::Status { asset } => {
            let names: Vec<String> = match asset {
                Some(a) => vec![a.clone()],
                None => engine.cluster_assets(),
            };
            if names.is_empty() {
                return Err(Failure {
                    message: "the plan has no postgres-cluster asset".to_owned(),
                    hint: Some("add one: [assets.NAME] type = \"postgres-cluster\"".to_owned()),
                    code: Exit::Error as u8,
                });
            }
            let statuses = names
                .iter()
                .map(|n| engine.wal_status(n))
                .collect::<Result<Vec<_>, _>>()?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&statuses).unwrap_or_default()
                );
            } else {
                for s in &statuses {
                    print_status(s);
                }
            }
            let broken = statuses
                .iter()
                .any(|s| !s.gaps.is_empty() || s.base_backups == 0);
            Ok(if broken { Exit::Partial } else { Exit::Ok } as u8)
        }
        WalAction::Compact { asset } => {
            let done = engine.wal_compact(asset)?;
            if out.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&done).unwrap_or_default()
                );
            } else {
                println!(
                    "asset {}: {} pushes folded into {}",
                    done.asset, done.before, done.after
                );
            }
            Ok(Exit::Ok as u8)
        }
        WalAction::Stream { asset } => {
            engine.wal_stream(asset, &STOP)?;
            Ok(Exit::Ok as u8)
        }
        WalAction::Setup { asset } => {
            let plan = std::path::absolute(plan).unwrap_or_else(|_| plan.to_path_buf());
            let exe = std::env::current_exe().unwrap_or_else(|_| "lifeboat".into());
            print!("{}", engine.wal_setup(asset, &plan, &exe)?);
            Ok(Exit::Ok as u8)
        }
    }
}

fn print_status(s: &WalStatus) {
    println!("asset {}", s.asset);
    println!(
        "  base backups: {}; archive: {} files in {} pushes",
        s.base_backups, s.files, s.batches
    );
    match (&s.newest_segment, &s.archived_to, s.newest_push) {
        (Some(seg), Some(lsn), Some(at)) => {
            println!("  archived to: {lsn} (segment {seg}), last push {at}");
        }
        _ => println!("  archived to: nothing yet"),
    }
    if let Some((segment, lsn)) = &s.unfinished {
        println!("  streamed to: {lsn} (segment {segment}, stored unfinished)");
    }
    if let Some(secs) = s.push_latency_secs {
        println!("  push latency: {secs:.1} s (newest segment's last write to stored)");
    }
    if let Some(n) = s.backlog {
        println!("  backlog: {n} segment(s) ready and not pushed");
    }
    match s.window {
        Some((from, to)) => println!("  recovery window: {from} .. {to}"),
        None => println!("  recovery window: none (no base backup)"),
    }
    if s.gaps.is_empty() {
        println!("  gaps: none");
    } else {
        for (a, b) in &s.gaps {
            if a == b {
                println!("  gap: {a} is missing");
            } else {
                println!("  gap: {a} .. {b} are missing");
            }
        }
    }
}
