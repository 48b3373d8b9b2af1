//! `lifeboat plan check` and `lifeboat plan show`: the plan file read, linted and printed,
//! without touching a server or a repository.

use lifeboat_engine::{Engine, Level, PlanCheck};
use lifeboat_plan::{ResolvedPlan, Step};
use serde::Serialize;

use crate::render::age;

/// `plan check`: findings on stdout (or one JSON document); the exit code says the worst.
pub fn check(engine: &Engine, json: bool) -> u8 {
    let report = engine.plan_check();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return report.exit_code();
    }
    print_check(engine.plan(), &report);
    report.exit_code()
}

fn print_check(plan: &ResolvedPlan, report: &PlanCheck) {
    for f in &report.findings {
        let level = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        println!("{level}: {}: {}", f.key, f.message);
        if let Some(h) = &f.hint {
            println!("  hint: {h}");
        }
    }
    let errors = report
        .findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .count();
    let warnings = report.findings.len() - errors;
    let drills = if report.drills == 0 {
        "no drill in the catalog yet, so no restore forecast".to_owned()
    } else {
        format!("forecasts from {} past drill(s)", report.drills)
    };
    println!(
        "plan {} ({}): {} asset(s), {} scenario(s); {errors} error(s), {warnings} warning(s); {drills}",
        report.plan,
        plan.file.display(),
        report.assets,
        report.scenarios
    );
}

#[derive(Serialize)]
struct AssetRow {
    name: String,
    kind: String,
    priority: String,
    schedule: Option<String>,
    rpo_secs: u64,
    rto_secs: u64,
    retention: String,
    checks: usize,
    source: String,
}

#[derive(Serialize)]
struct RepoRow {
    name: String,
    location: String,
    copy_from: Option<String>,
}

#[derive(Serialize)]
struct NotifyRow {
    name: String,
    kind: &'static str,
    on: Vec<String>,
}

#[derive(Serialize)]
struct ScenarioRow {
    name: String,
    description: Option<String>,
    rto_secs: u64,
    steps: Vec<String>,
}

#[derive(Serialize)]
struct PlanView {
    plan: String,
    file: String,
    rpo_secs: u64,
    rto_secs: u64,
    repositories: Vec<RepoRow>,
    assets: Vec<AssetRow>,
    notify: Vec<NotifyRow>,
    scenarios: Vec<ScenarioRow>,
}

/// `RpoBreach` as the plan writes it: `rpo-breach`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn step_line(s: &Step) -> String {
    match s {
        Step::Run { run, .. } => format!("run `{run}`"),
        Step::Restore {
            asset,
            to,
            from,
            time,
            ..
        } => {
            let mut t = format!("restore {asset}");
            if let Some(time) = time {
                t.push_str(&format!(" to {time}"));
            }
            if let Some(f) = from {
                t.push_str(&format!(" from {f}"));
            }
            if let Some(to) = to {
                t.push_str(&format!(" into {}", lifeboat_core::redact_url(to)));
            }
            t
        }
        Step::Check { asset } => format!("check {asset}"),
        Step::Http { url, method, .. } => format!("http {method} {url}"),
        Step::Wait { until, .. } => format!("wait `{until}`"),
        Step::Confirm { prompt } => format!("confirm \"{prompt}\""),
        Step::Notify { target, .. } => {
            format!("notify {}", target.as_deref().unwrap_or("all"))
        }
    }
}

fn view(plan: &ResolvedPlan) -> PlanView {
    PlanView {
        plan: plan.name.clone(),
        file: plan.file.display().to_string(),
        rpo_secs: plan.rpo.as_secs(),
        rto_secs: plan.rto.as_secs(),
        repositories: plan
            .repositories
            .iter()
            .map(|r| RepoRow {
                name: r.name.clone(),
                location: r.location.to_string(),
                copy_from: r.copy_from.clone(),
            })
            .collect(),
        assets: plan
            .assets
            .iter()
            .map(|a| AssetRow {
                name: a.name.clone(),
                kind: a.kind().to_string(),
                priority: a.priority.to_string(),
                schedule: a.schedule.as_ref().map(ToString::to_string),
                rpo_secs: a.rpo.as_secs(),
                rto_secs: a.rto.as_secs(),
                retention: a.retention.to_string(),
                checks: a.checks.len(),
                source: lifeboat_engine::describe(a).location,
            })
            .collect(),
        notify: plan
            .notify
            .iter()
            .map(|n| NotifyRow {
                name: n.name.clone(),
                kind: n.kind.as_str(),
                on: n.on.iter().map(|e| kebab(&format!("{e:?}"))).collect(),
            })
            .collect(),
        scenarios: plan
            .scenarios
            .iter()
            .map(|s| ScenarioRow {
                name: s.name.clone(),
                description: s.description.clone(),
                rto_secs: s.rto.unwrap_or(plan.rto).as_secs(),
                steps: s.steps.iter().map(step_line).collect(),
            })
            .collect(),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            out.push(' ');
            out.push_str(c);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 1));
            }
        }
        println!("{out}");
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// `plan show`: the plan as tables (or one JSON document).
pub fn show(plan: &ResolvedPlan, json: bool) {
    let v = view(plan);
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!(
        "plan {} ({}): RPO {}, RTO {}",
        v.plan,
        v.file,
        age(v.rpo_secs),
        age(v.rto_secs)
    );
    println!("\nrepositories");
    table(
        &["name", "location", "copy of"],
        &v.repositories
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    if i == 0 {
                        format!("{} (primary)", r.name)
                    } else {
                        r.name.clone()
                    },
                    r.location.clone(),
                    r.copy_from.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!("\nassets");
    table(
        &[
            "name",
            "type",
            "prio",
            "schedule",
            "rpo",
            "rto",
            "retention",
            "checks",
            "source",
        ],
        &v.assets
            .iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    a.kind.clone(),
                    a.priority.clone(),
                    a.schedule.clone().unwrap_or_else(|| "on demand".into()),
                    age(a.rpo_secs),
                    age(a.rto_secs),
                    a.retention.clone(),
                    a.checks.to_string(),
                    a.source.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if !v.notify.is_empty() {
        println!("\nnotifications");
        table(
            &["name", "type", "on"],
            &v.notify
                .iter()
                .map(|n| vec![n.name.clone(), n.kind.to_owned(), n.on.join(", ")])
                .collect::<Vec<_>>(),
        );
    }
    if !v.scenarios.is_empty() {
        println!("\nscenarios (lifeboat recover NAME)");
        for s in &v.scenarios {
            println!("  {}  (RTO {})", s.name, age(s.rto_secs));
            if let Some(d) = &s.description {
                println!("    {d}");
            }
            for (i, step) in s.steps.iter().enumerate() {
                println!("    {}. {step}", i + 1);
            }
        }
    }
}
