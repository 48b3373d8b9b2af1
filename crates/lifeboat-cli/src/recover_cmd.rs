//! `lifeboat recover SCENARIO`: the steps shown first, a live timeline while they run,
//! questions on the terminal, and the incident report written at the end.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::Path,
};

use lifeboat_engine::{
    Engine, RecoverMode, RecoverReport, RecoverRequest, RecoverUi, StepRecord, StepStatus,
    human_secs,
};

use crate::{Exit, Failure};

/// The terminal side of a recovery: timeline on stdout, questions on stderr, answers on stdin.
struct Terminal {
    json: bool,
}

fn clock() -> String {
    jiff::Timestamp::now().strftime("%H:%M:%S").to_string()
}

impl RecoverUi for Terminal {
    fn step_started(&mut self, step: &StepRecord, total: usize) {
        if !self.json {
            println!("{}  [{}/{total}] {}", clock(), step.index, step.title);
        }
    }

    fn step_finished(&mut self, step: &StepRecord, total: usize) {
        if self.json {
            return;
        }
        let detail = step.detail.as_deref().unwrap_or("");
        println!(
            "{}  [{}/{total}] {} in {}: {detail}",
            clock(),
            step.index,
            step.status.label(),
            human_secs(step.secs)
        );
        let _ = std::io::stdout().flush();
    }

    fn ask(&mut self, question: &str) -> bool {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return false;
        }
        matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}

pub struct Args<'a> {
    pub scenario: &'a str,
    pub dry_run: bool,
    pub yes: bool,
    pub drill: bool,
    pub report: Option<&'a Path>,
}

pub fn run(engine: &Engine, json: bool, args: &Args<'_>) -> Result<u8, Failure> {
    let scenario = engine.scenario(args.scenario)?;
    let live = !args.dry_run && !args.drill;
    if live && !args.yes && engine.recover_asks(args.scenario)? && !std::io::stdin().is_terminal() {
        return Err(Failure {
            message: format!(
                "recover {}: it asks before restoring over live targets and at confirm steps, and stdin is not a terminal",
                args.scenario
            ),
            hint: Some(
                "add --yes to run it unattended (safety snapshots are still taken; confirm steps become follow-up items), --dry-run to see the steps, or --drill to rehearse on sandboxes".into(),
            ),
            code: Exit::Error as u8,
        });
    }
    if !json {
        let steps = engine.recover_steps(args.scenario)?;
        let mode = if args.drill {
            " as a drill (sandboxes, no live target touched)"
        } else if args.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        };
        println!(
            "recover {}{mode}: {} step(s), RTO target {}",
            scenario.name,
            steps.len(),
            human_secs(scenario.rto.unwrap_or(engine.plan().rto).as_secs_f64())
        );
        if let Some(d) = &scenario.description {
            println!("  {d}");
        }
        for s in &steps {
            let mark = if s.destructive && live {
                "   (overwrites a live target; safety snapshot first)"
            } else {
                ""
            };
            println!("  {}. {}{mark}", s.index, s.title);
        }
        println!();
    }
    let req = RecoverRequest {
        scenario: args.scenario.to_owned(),
        dry_run: args.dry_run,
        yes: args.yes,
        drill: args.drill,
    };
    let report = engine.recover(&req, &mut Terminal { json })?;
    let written = engine.save_incident(&report, args.report)?;
    if json {
        let doc = serde_json::json!({ "report": report, "report-file": written });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        );
    } else {
        print_outcome(&report, written.as_deref());
    }
    let ok = report.ok && (report.mode != RecoverMode::Drill || report.rto_met());
    Ok(if ok { Exit::Ok } else { Exit::Error } as u8)
}

fn print_outcome(report: &RecoverReport, written: Option<&Path>) {
    println!();
    println!("{}", report.summary());
    for r in &report.restored {
        println!(
            "  {}: data age {} (RPO target {}){}",
            r.asset,
            human_secs(r.data_age_secs as f64),
            human_secs(r.rpo_target_secs as f64),
            r.safety_snapshot
                .as_deref()
                .map(|s| format!(", safety snapshot {s}"))
                .unwrap_or_default()
        );
        if let Some(d) = &r.damaged {
            println!("    {}", d.line());
        }
    }
    if !report.next.is_empty() {
        println!("\nWhat to do next:");
        for n in &report.next {
            println!("  - {n}");
        }
    }
    if !report.follow_up.is_empty() {
        println!("\nFollow-up items:");
        for n in &report.follow_up {
            println!("  - {n}");
        }
    }
    let skipped = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Skipped)
        .count();
    if skipped > 0 && report.mode == RecoverMode::Drill {
        println!("\n{skipped} step(s) act on live services and were skipped in the drill.");
    }
    if let Some(p) = written {
        println!("\nincident report: {}", p.display());
    }
}
