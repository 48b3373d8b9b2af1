//! The overview: every asset against its targets, the repositories and copies, the jobs
//! running now. Its body is also the fragment `live.js` refreshes every two seconds.

use jiff::Timestamp;
use lifeboat_engine::AssetStatus;
use maud::{Markup, html};

use super::{
    access::Who,
    layout::{badge, bytes, csrf_field, rag, secs, time},
};
use crate::state::{ActiveJob, AppState, Cache};

/// The plan's state in one line, and its colour.
fn verdict(cache: &Cache) -> (String, &'static str) {
    if let Some(e) = &cache.error {
        return (format!("The repository could not be read: {e}"), "bad");
    }
    if cache.refreshed.is_none() {
        return ("Looking at the repository…".to_owned(), "warn");
    }
    let breached: Vec<&str> = cache
        .assets
        .iter()
        .filter(|a| a.breach)
        .map(|a| a.asset.as_str())
        .collect();
    let copies_late: Vec<String> = cache
        .assets
        .iter()
        .flat_map(|a| {
            a.copies
                .iter()
                .filter(|c| c.breach)
                .map(move |c| format!("{} in {}", a.asset, c.repository))
        })
        .collect();
    let slow: Vec<&str> = cache
        .assets
        .iter()
        .filter(|a| a.forecast_over_target)
        .map(|a| a.asset.as_str())
        .collect();
    let mut problems = Vec::new();
    if !breached.is_empty() {
        problems.push(format!("RPO breached: {}", breached.join(", ")));
    }
    if !copies_late.is_empty() {
        problems.push(format!("copies behind: {}", copies_late.join(", ")));
    }
    if !slow.is_empty() {
        problems.push(format!(
            "restore forecast over the RTO: {}",
            slow.join(", ")
        ));
    }
    if problems.is_empty() {
        let copies = cache.assets.iter().any(|a| !a.copies.is_empty());
        let line = match (cache.assets.len(), copies) {
            (1, false) => "The asset is within its RPO.".to_owned(),
            (1, true) => "The asset is within its RPO and its copies are current.".to_owned(),
            (n, false) => format!("All {n} assets are within their RPO."),
            (n, true) => {
                format!("All {n} assets are within their RPO and their copies are current.")
            }
        };
        (line, "")
    } else {
        (
            problems.join(" · "),
            if breached.is_empty() { "warn" } else { "bad" },
        )
    }
}

fn age_cell(a: &AssetStatus) -> Markup {
    match a.age_secs {
        None => badge("red", "no snapshot"),
        Some(age) => {
            let colour = rag(age as f64, a.rpo_secs as f64);
            let word = match colour {
                "red" => "late",
                "amber" => "due soon",
                _ => "ok",
            };
            html! {
                (badge(colour, word)) " " (secs(age as f64)) " old"
                span.muted { " / RPO " (secs(a.rpo_secs as f64)) }
            }
        }
    }
}

fn drill_cell(a: &AssetStatus, cache: &Cache) -> Markup {
    match cache.drill_rto.get(&a.asset) {
        None => html! { span.muted { "never drilled" } },
        Some(rto) => {
            let met = *rto <= a.rto_secs as f64;
            html! {
                (badge(if met { "green" } else { "red" }, if met { "met" } else { "missed" }))
                " " (secs(*rto)) span.muted { " / RTO " (secs(a.rto_secs as f64)) }
            }
        }
    }
}

/// A running job's bar: elapsed time against what the same job took last time.
fn job_row(j: &ActiveJob, now: Timestamp) -> Markup {
    let elapsed = (now.as_second() - j.since.as_second()).max(0) as f64;
    html! {
        tr {
            td { (j.key) }
            td { (j.trigger) }
            td { @if j.running { "running" } @else { "waiting for its assets" } }
            td {
                @match (j.running, j.expected_secs) {
                    (true, Some(expected)) if expected > 0.0 => {
                        @let done = (elapsed / expected).min(0.99);
                        progress max="100" value=(format!("{:.0}", done * 100.0)) aria-label={ (j.key) " progress" } {}
                        span.muted { " " (secs(elapsed)) " of about " (secs(expected)) " (the last run)" }
                    }
                    (true, _) => {
                        progress aria-label={ (j.key) " progress" } {}
                        span.muted { " " (secs(elapsed)) }
                    }
                    _ => { span.muted { "since " (time(j.since)) } }
                }
            }
        }
    }
}

/// The jobs panel, on the overview and on asset pages.
pub fn jobs(state: &AppState) -> Markup {
    let jobs = state.active_jobs();
    let now = Timestamp::now();
    html! {
        h2 { "Jobs" }
        @if jobs.is_empty() {
            p.muted { "No job is running." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "job" } th { "asked by" } th { "state" } th { "progress" } } }
                tbody { @for j in &jobs { (job_row(j, now)) } }
            } }
        }
    }
}

/// The overview's live part.
pub fn body(state: &AppState, who: &Who) -> Markup {
    let cache = state.cache();
    let (line, class) = verdict(&cache);
    html! {
        div class={ "state " (class) } role="status" { (line) }
        div.table-wrap { table {
            thead { tr {
                th { "asset" } th { "priority" } th.wide { "kind" } th { "newest snapshot" }
                th { "age against RPO" } th { "last drill" } th.wide { "restore forecast" } th.wide { "copies" }
            } }
            tbody {
                @for a in &cache.assets {
                    tr {
                        td { a href={ "/assets/" (a.asset) } { (a.asset) } }
                        td { (a.priority) }
                        td.wide { (a.kind.as_str()) }
                        td {
                            @match (&a.last_snapshot, a.last_time) {
                                (Some(id), Some(t)) => { (time(t)) br; span.muted { (id) } }
                                _ => { span.muted { "none" } }
                            }
                        }
                        td { (age_cell(a)) }
                        td { (drill_cell(a, &cache)) }
                        td.wide {
                            @match a.rto_forecast_secs {
                                Some(f) => {
                                    (secs(f))
                                    @if a.forecast_over_target { " " (badge("red", "over the RTO")) }
                                }
                                None => span.muted { "no drill yet" },
                            }
                        }
                        td.wide {
                            @for c in &a.copies {
                                div {
                                    (c.repository) ": "
                                    @match c.lag_secs {
                                        Some(0) => (badge("green", "current")),
                                        Some(l) => { (badge(if c.breach { "red" } else { "amber" }, "behind")) " " (secs(l as f64)) }
                                        None => (badge("grey", "unknown")),
                                    }
                                }
                            }
                            @if a.copies.is_empty() { span.muted { "none" } }
                        }
                    }
                }
            }
        } }
        (jobs(state))
        h2 { "Repositories" }
        div.table-wrap { table {
            thead { tr { th { "repository" } th.num { "stored" } th.num { "snapshots" } th { "copies from" } th { "copy lag" } } }
            tbody {
                @for r in &cache.repositories {
                    tr {
                        td { (r.repository) }
                        td.num { @if let Some(b) = r.stored_bytes { (bytes(b)) } @else { "?" } }
                        td.num { @if let Some(n) = r.snapshots { (n) } @else { "?" } }
                        td { (r.copy_from.as_deref().unwrap_or("")) }
                        td {
                            @if let Some(lag) = r.copy_lag_secs {
                                (secs(lag as f64)) " (" (r.copy_pending.unwrap_or(0)) " snapshots pending)"
                            }
                            @if let Some(e) = &r.error { span.muted { (e) } }
                        }
                    }
                }
            }
        } }
        @if let Some(t) = cache.refreshed {
            p.muted { "Figures as of " (time(t)) "." }
        }
        @if who.operator() {
            div.actions {
                form method="post" action="/actions/backup" {
                    (csrf_field(who))
                    button type="submit" { "Back up every asset" }
                }
                form method="post" action="/actions/drill" {
                    (csrf_field(who))
                    button type="submit" { "Drill the whole plan" }
                }
            }
        }
    }
}

/// The overview page's content.
pub fn page(state: &AppState, who: &Who) -> Markup {
    html! {
        h1 { "Overview" }
        div data-live="/live/overview" { (body(state, who)) }
    }
}
