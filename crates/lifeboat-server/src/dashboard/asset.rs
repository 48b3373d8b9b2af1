//! An asset's page (snapshots, size and RTO charts) and a snapshot's page (its manifest and
//! its tree, with downloads).

use lifeboat_engine::{DrillReport, SnapshotDetail};
use lifeboat_plan::ResolvedAsset;
use lifeboat_repo::{EntryKind, SAFETY_TAG, SnapshotInfo, TreeEntry};
use maud::{Markup, html};

use super::{
    access::Who,
    charts,
    layout::{badge, bytes, csrf_field, query, secs, time},
    overview,
};
use crate::state::AppState;

/// Rows of the snapshot table; the chart still shows every snapshot.
pub const TABLE_ROWS: usize = 200;

/// What an asset page shows, read on a blocking thread.
pub struct AssetData {
    /// Oldest first.
    pub snapshots: Vec<SnapshotInfo>,
    pub drills: Vec<DrillReport>,
}

fn is_safety(s: &SnapshotInfo) -> bool {
    s.tags.iter().any(|t| t == SAFETY_TAG)
}

pub fn page(state: &AppState, who: &Who, asset: &ResolvedAsset, data: &AssetData) -> Markup {
    let cache = state.cache();
    let status = cache.assets.iter().find(|a| a.asset == asset.name);
    // Safety snapshots hold what a target was before a restore, not a backup's size.
    let regular: Vec<&SnapshotInfo> = data.snapshots.iter().filter(|s| !is_safety(s)).collect();
    let sizes: Vec<u64> = regular.iter().map(|s| s.bytes).collect();
    let marks = lifeboat_engine::size_anomalies(asset, &sizes);
    let points: Vec<_> = regular
        .iter()
        .zip(&marks)
        .map(|(s, m)| (s.time, s.bytes, *m))
        .collect();
    let drills: Vec<_> = data
        .drills
        .iter()
        .rev()
        .filter_map(|d| {
            d.assets
                .iter()
                .find(|a| a.asset == asset.name)
                .map(|a| (d.started_at, a.rto_secs))
        })
        .collect();
    let newest_first: Vec<&SnapshotInfo> = data.snapshots.iter().rev().take(TABLE_ROWS).collect();
    html! {
        h1 { "Asset " (asset.name) }
        p {
            (asset.kind().as_str()) " · priority " (asset.priority)
            " · RPO " (secs(asset.rpo.as_secs_f64())) " · RTO " (secs(asset.rto.as_secs_f64()))
            @if let Some(s) = status {
                " · " @if s.breach { (badge("red", "RPO breached")) } @else { (badge("green", "within RPO")) }
            }
        }
        @if who.operator() {
            div.actions {
                form method="post" action="/actions/backup" {
                    (csrf_field(who))
                    input type="hidden" name="asset" value=(asset.name);
                    button type="submit" { "Back up " (asset.name) " now" }
                }
                form method="post" action="/actions/drill" {
                    (csrf_field(who))
                    input type="hidden" name="asset" value=(asset.name);
                    button type="submit" { "Drill " (asset.name) }
                }
            }
        }
        div data-live="/live/jobs" { (overview::jobs(state)) }
        h2 { "Size over time" }
        @if points.is_empty() {
            p.muted { "No snapshot yet." }
        } @else {
            div.card {
                (charts::sizes(&points))
                p.muted { (marks.iter().filter(|m| **m).count()) " of " (points.len())
                    " snapshots lie outside the size bounds or the usual range (red circles)." }
            }
        }
        h2 { "Achieved RTO per drill" }
        @if drills.is_empty() {
            p.muted { "No drill has restored this asset yet." }
        } @else {
            div.card { (charts::rto(&drills, asset.rto.as_secs_f64())) }
        }
        h2 { "Snapshots" }
        p.muted {
            (data.snapshots.len()) " in the primary repository"
            @if data.snapshots.len() > TABLE_ROWS { ", the newest " (TABLE_ROWS) " below" }
            "."
        }
        div.table-wrap { table {
            thead { tr { th { "time" } th { "id" } th.num { "size" } th.num { "added" } th.wide { "tags" } } }
            tbody {
                @for s in newest_first {
                    tr {
                        td { (time(s.time)) @if is_safety(s) { " " (badge("amber", "safety")) } }
                        td { a href={ "/assets/" (asset.name) "/snapshots/" (s.short_id) } { (s.short_id) } }
                        td.num { (bytes(s.bytes)) }
                        td.num { (bytes(s.added_bytes)) }
                        td.wide.muted { (s.tags.join(", ")) }
                    }
                }
            }
        } }
    }
}

fn parent_of(rel: &str) -> String {
    let trimmed = rel.trim_matches('/');
    trimmed
        .rsplit_once('/')
        .map_or(String::new(), |(p, _)| p.to_owned())
}

fn child(rel: &str, name: &str) -> String {
    let base = rel.trim_matches('/');
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}/{name}")
    }
}

fn manifest_card(d: &SnapshotDetail) -> Markup {
    let Some(m) = &d.manifest else {
        return html! { p.muted { "This snapshot has no Lifeboat manifest." } };
    };
    html! {
        div.card {
            p { "Taken " (time(m.started_at)) " from " code { (m.source) }
                @if let Some(v) = &m.server_version { " (" (v) ")" } }
            @if let Some(r) = &m.reason { p { "Reason: " (r) } }
            @if !m.consistency.is_empty() {
                p { "Consistency: "
                    @for (k, v) in &m.consistency { code { (k) "=" (v) } " " } }
            }
            @if !m.artifacts.is_empty() {
                h2 { "Artifacts" }
                div.table-wrap { table {
                    thead { tr { th { "name" } th.num { "size" } th.wide { "SHA-256" } } }
                    tbody { @for a in &m.artifacts {
                        tr { td { (a.name) } td.num { (bytes(a.size)) } td.wide.muted { code { (a.sha256) } } }
                    } }
                } }
            }
            @if !m.tables.is_empty() {
                h2 { "Rows per table" }
                div.table-wrap { table {
                    thead { tr { th { "table" } th.num { "rows" } } }
                    tbody { @for (t, n) in &m.tables { tr { td { (t) } td.num { (n) } } } }
                } }
            }
            @if !m.keys.is_empty() {
                h2 { "Keys per database" }
                div.table-wrap { table {
                    thead { tr { th { "database" } th.num { "keys" } } }
                    tbody { @for (db, n) in &m.keys { tr { td { (db) } td.num { (n) } } } }
                } }
            }
            @if let Some(f) = &m.files {
                p { (f.files) " files, " (f.dirs) " directories, " (f.symlinks) " symlinks, " (bytes(f.bytes))
                    @if f.redacted > 0 { ", " (f.redacted) " redacted" } }
            }
            @if let Some(i) = &m.integrity { p { "Integrity check: " (i) } }
            @for w in &m.warnings { p { (badge("amber", "warning")) " " (w) } }
        }
    }
}

pub fn snapshot_page(asset: &str, rel: &str, d: &SnapshotDetail, entries: &[TreeEntry]) -> Markup {
    let s = &d.snapshot;
    let base = format!("/assets/{asset}/snapshots/{}", s.short_id);
    let mut crumbs = vec![(String::new(), asset.to_owned())];
    let mut acc = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        acc = child(&acc, part);
        crumbs.push((acc.clone(), part.to_owned()));
    }
    html! {
        h1 { "Snapshot " (s.short_id) " of " a href={ "/assets/" (asset) } { (asset) } }
        p { (time(s.time)) " · " (bytes(s.bytes)) " read · " (bytes(s.added_bytes)) " added"
            @if is_safety(s) { " · " (badge("amber", "safety snapshot")) } }
        (manifest_card(d))
        h2 { "Contents" }
        nav.crumbs aria-label="folder" {
            @for (i, (path, name)) in crumbs.iter().enumerate() {
                @if i > 0 { " / " }
                a href=(query(&base, "path", path)) { (name) }
            }
        }
        div.table-wrap { table {
            thead { tr { th { "name" } th.num { "size" } th.wide { "modified" } th { "download" } } }
            tbody {
                @if !rel.trim_matches('/').is_empty() {
                    tr { td { a href=(query(&base, "path", &parent_of(rel))) { ".." } } td {} td.wide {} td {} }
                }
                @for e in entries {
                    @let path = child(rel, &e.name);
                    tr {
                        td {
                            @match e.kind {
                                EntryKind::Dir => a href=(query(&base, "path", &path)) { (e.name) "/" },
                                EntryKind::Symlink => { (e.name) span.muted { " → " (e.target.as_deref().unwrap_or("")) } },
                                _ => (e.name),
                            }
                        }
                        td.num { @if e.kind == EntryKind::File { (bytes(e.size)) } }
                        td.wide.muted { @if let Some(t) = e.mtime { (time(t)) } }
                        td {
                            @match e.kind {
                                EntryKind::File => a href=(query(&format!("{base}/download"), "path", &path)) aria-label={ "download " (e.name) } { "file" },
                                EntryKind::Dir => a href=(query(&format!("{base}/download"), "path", &path)) aria-label={ "download " (e.name) " as a tar archive" } { ".tar" },
                                _ => {},
                            }
                        }
                    }
                }
            }
        } }
    }
}
