//! Drills, runbooks, activity and PITR pages.

use jiff::Timestamp;
use lifeboat_engine::{
    DrillReport, EventRecord, PastDrill, RecoverReport, Run, StepRecord, audit::AuditCheck,
    audit::AuditEntry,
};
use lifeboat_plan::ResolvedScenario;
use maud::{Markup, PreEscaped, html};

use super::{
    access::Who,
    charts,
    layout::{badge, csrf_field, secs, time},
};
use crate::state::Cache;

pub fn drills(who: &Who, past: &[PastDrill]) -> Markup {
    html! {
        h1 { "Drills" }
        @if who.operator() {
            div.actions {
                form method="post" action="/actions/drill" {
                    (csrf_field(who))
                    button type="submit" { "Drill the whole plan" }
                }
            }
        }
        @if past.is_empty() {
            p.muted { "No drill yet." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "when" } th { "verdict" } th.num { "RTO" } th.num.wide { "target" } th.num { "assets" } th.wide { "failed" } } }
                tbody { @for d in past {
                    tr {
                        td { a href={ "/drills/" (&d.snapshot[..8.min(d.snapshot.len())]) } { (time(d.started_at)) } }
                        td { @if d.passed { (badge("green", "passed")) } @else { (badge("red", "failed")) } }
                        td.num { (secs(d.rto_secs)) }
                        td.num.wide { (secs(d.rto_target_secs as f64)) }
                        td.num { (d.assets) }
                        td.wide { (d.failed.join(", ")) }
                    }
                } }
            } }
        }
    }
}

pub fn drill(report: &DrillReport) -> Markup {
    html! {
        p { a href="/drills" { "All drills" } }
        // The same content as the HTML report `lifeboat drill --report x.html` writes; its
        // text is escaped where it is built.
        div.report { (PreEscaped(report.to_html_body())) }
    }
}

fn steps_table(steps: &[StepRecord], with_status: bool) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr { th.num { "#" } th { "step" } @if with_status { th { "outcome" } th.wide { "detail" } } } }
            tbody { @for s in steps {
                tr {
                    td.num { (s.index) }
                    td { (s.title) @if s.destructive { " " (badge("red", "overwrites a live target")) } }
                    @if with_status {
                        td { (s.status.label()) }
                        td.wide { (s.detail.as_deref().unwrap_or("")) }
                    }
                }
            } }
        } }
    }
}

/// Every scenario with its steps, and the incident reports written beside the plan.
pub fn runbooks(
    who: &Who,
    scenarios: &[(ResolvedScenario, Vec<StepRecord>)],
    incidents: &[String],
) -> Markup {
    html! {
        h1 { "Runbooks" }
        @if scenarios.is_empty() {
            p.muted { "The plan has no [[scenarios]]." }
        }
        @for (s, steps) in scenarios {
            section.card aria-labelledby={ "scenario-" (s.name) } {
                h2 id={ "scenario-" (s.name) } { (s.name) }
                @if let Some(d) = &s.description { p { (d) } }
                (steps_table(steps, false))
                div.actions {
                    a.button href={ "/runbooks/" (s.name) "/dry-run" } { "Dry run " (s.name) }
                }
                @if who.operator() {
                    form method="post" action={ "/runbooks/" (s.name) "/run" } {
                        (csrf_field(who))
                        label for={ "confirm-" (s.name) } { "To run it against the live targets, type its name: " (s.name) }
                        input type="text" id={ "confirm-" (s.name) } name="confirm" autocomplete="off";
                        " "
                        button.danger type="submit" { "Run " (s.name) " for real" }
                    }
                }
            }
        }
        h2 { "Incident reports" }
        @if incidents.is_empty() {
            p.muted { "None yet: live runs and scenario drills write one." }
        } @else {
            ul { @for i in incidents { li { a href={ "/runbooks/incidents/" (i) } { (i) } } } }
        }
    }
}

pub fn dry_run(report: &RecoverReport) -> Markup {
    html! {
        p { a href="/runbooks" { "All runbooks" } }
        h1 { "Dry run of " (report.scenario) }
        p { (report.summary()) }
        p.muted { "Nothing was changed: each step says what it would do." }
        (steps_table(&report.steps, true))
        @if !report.follow_up.is_empty() {
            h2 { "Afterwards" }
            ul { @for f in &report.follow_up { li { (f) } } }
        }
    }
}

pub fn incident(name: &str, text: &str) -> Markup {
    html! {
        p { a href="/runbooks" { "All runbooks" } }
        h1 { "Incident report " (name) }
        pre { (text) }
    }
}

pub fn activity(
    runs: &[Run],
    events: &[EventRecord],
    audit: &[AuditEntry],
    check: Option<&AuditCheck>,
) -> Markup {
    html! {
        h1 { "Activity" }
        h2 { "Runs" }
        div.table-wrap { table {
            thead { tr { th { "started" } th { "job" } th { "asset" } th { "outcome" } th.num { "took" } th.wide { "asked by" } th.wide { "error" } } }
            tbody { @for r in runs {
                tr {
                    td { (time(r.started_at)) }
                    td { (r.job) }
                    td { (r.asset.as_deref().unwrap_or("")) }
                    td { (badge(match r.outcome.as_str() { "ok" => "green", "partial" => "amber", "cancelled" => "grey", _ => "red" }, r.outcome.as_str())) }
                    td.num { (secs(r.duration_secs)) }
                    td.wide { (r.trigger) }
                    td.wide { (r.error.as_deref().unwrap_or("")) }
                }
            } }
        } }
        h2 { "Events and alerts" }
        p.muted { "What was sent to the notifiers that subscribe to each kind." }
        div.table-wrap { table {
            thead { tr { th { "time" } th { "event" } th { "asset" } th { "summary" } } }
            tbody { @for e in events {
                tr { td { (time(e.time)) } td { (e.kind) } td { (e.asset.as_deref().unwrap_or("")) } td { (e.summary) } }
            } }
        } }
        h2 { "Audit log" }
        @match check {
            Some(c) if c.broken.is_none() => p { (badge("green", "chain intact")) " " (c.valid) " lines, each holding the hash of the one before." },
            Some(c) => p { (badge("red", "chain broken")) " at line " (c.broken.as_ref().map_or(0, |b| b.line)) ": "
                (c.broken.as_ref().map_or("", |b| b.reason.as_str())) },
            None => p.muted { "No audit log yet." },
        }
        div.table-wrap { table {
            thead { tr { th.num { "#" } th { "time" } th { "who" } th { "what" } th { "outcome" } th.wide { "detail" } } }
            tbody { @for a in audit {
                tr { td.num { (a.seq) } td { (a.time) } td { (a.user) "@" (a.host) } td { (a.what) } td { (a.outcome) } td.wide { (a.detail.as_deref().unwrap_or("")) } }
            } }
        } }
    }
}

/// One cluster asset's recoverable window, with the base backups the page read.
pub fn pitr(cache: &Cache, bases: &[(String, Vec<Timestamp>)]) -> Markup {
    let now = cache.refreshed;
    html! {
        h1 { "Point-in-time recovery" }
        @if cache.wal.is_empty() {
            p.muted { "The plan has no postgres-cluster asset." }
        }
        @for w in &cache.wal {
            section.card aria-labelledby={ "wal-" (w.asset) } {
                h2 id={ "wal-" (w.asset) } { a href={ "/assets/" (w.asset) } { (w.asset) } }
                @match w.window {
                    Some((from, to)) => {
                        p { "Recoverable from " (time(from)) " to " (time(to)) "." }
                        @let b = bases.iter().find(|(a, _)| *a == w.asset).map_or(&[][..], |(_, b)| b.as_slice());
                        (charts::window(from, to, b, w.gaps.len()))
                    }
                    None => p { (badge("red", "no window")) " No base backup with its WAL yet." },
                }
                ul {
                    li { "Archive lag: "
                        @match (w.newest_push, now) {
                            (Some(at), Some(now)) => (secs((now.as_second() - at.as_second()).max(0) as f64)),
                            _ => "nothing stored yet",
                        }
                    }
                    @if let Some(n) = w.backlog { li { "Ready backlog: " (n) " segments" } }
                    @if let Some(l) = w.push_latency_secs { li { "Last push took " (secs(l)) } }
                    @if let Some(s) = &w.archived_to { li { "Archived to segment " code { (s) } } }
                    @if let Some((seg, lsn)) = &w.unfinished { li { "Streaming: " code { (seg) } " reaches " code { (lsn) } } }
                    li { (w.base_backups) " base backups, " (w.files) " WAL files in " (w.batches) " batches" }
                }
                @if w.gaps.is_empty() {
                    p { (badge("green", "no gaps")) }
                } @else {
                    p { (badge("red", "gaps")) " Recovery cannot pass these missing segments:" }
                    ul { @for (from, to) in &w.gaps { li { code { (from) } " to " code { (to) } } } }
                }
            }
        }
    }
}
