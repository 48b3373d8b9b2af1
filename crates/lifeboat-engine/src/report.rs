//! A drill's outcome, and its report as Markdown, JSON or one self-contained HTML page.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use crate::{EngineError, SandboxRestore, engine::Engine};

/// A drill of some or all of a plan's assets.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DrillReport {
    pub plan: String,
    pub started_at: Timestamp,
    /// Wall time of the whole drill: the plan's achieved RTO.
    pub rto_secs: f64,
    pub rto_target_secs: u64,
    /// Age of the oldest restored data: the plan's achieved RPO.
    pub rpo_secs: Option<u64>,
    pub rpo_target_secs: u64,
    pub parallel: usize,
    pub assets: Vec<SandboxRestore>,
    /// Every asset restored, verified, its checks passed and its targets met.
    pub passed: bool,
}

impl SandboxRestore {
    /// Restored and checked, within both targets.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.ok && self.rto_met() && self.rpo_met()
    }
}

/// Snapshots of drill reports use this asset name, which no plan asset can have (plan names
/// start with a letter or digit).
pub const DRILLS_ASSET: &str = "_drills";
/// The report's artifacts inside such a snapshot.
pub const REPORT_JSON: &str = "drill.json";
pub const REPORT_MD: &str = "drill.md";

/// A past drill, as `lifeboat reports` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PastDrill {
    pub snapshot: String,
    pub started_at: Timestamp,
    pub passed: bool,
    pub rto_secs: f64,
    pub rto_target_secs: u64,
    pub assets: usize,
    pub failed: Vec<String>,
}

impl Engine {
    /// Writes the report into the primary repository as a snapshot of its own (`drill.json`
    /// and `drill.md`), so the evidence survives the loss of this host. Returns its id.
    ///
    /// # Errors
    /// When the repository cannot be written.
    pub fn save_drill(&self, report: &DrillReport) -> Result<String, EngineError> {
        let repo = self.open_primary()?;
        let lock = repo.lock(lifeboat_repo::LockKind::Shared, "drill report")?;
        let artifact = |name: &str, bytes: Vec<u8>| lifeboat_core::StreamArtifact {
            name: name.to_owned(),
            data: lifeboat_core::ArtifactData::Stream(Box::new(move || {
                Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn std::io::Read + Send>)
            })),
        };
        let json = serde_json::to_vec_pretty(report).unwrap_or_default();
        let input = lifeboat_core::BackupInput {
            plan: self.plan().name.clone(),
            asset: DRILLS_ASSET.to_owned(),
            kind: lifeboat_core::AssetKind::Command,
            source: "lifeboat drill".to_owned(),
            reason: Some("drill-report".to_owned()),
            payload: lifeboat_core::Payload::Streams(vec![
                artifact(REPORT_JSON, json),
                artifact(REPORT_MD, report.to_markdown().into_bytes()),
            ]),
            facts: lifeboat_core::SourceFacts::default(),
        };
        let id = repo.backup(&lock, input, None)?.snapshot.id;
        drop(lock);
        // The repository holds the report; the catalog only indexes it, and catches up later.
        if let Err(e) = self.catalog().and_then(|c| c.add_drill(&id, report)) {
            tracing::warn!("drill {}: not indexed in the catalog: {e}", &id[..8]);
        }
        Ok(id)
    }

    /// One past drill's Markdown report.
    ///
    /// # Errors
    /// No such drill, or the repository cannot be read.
    pub fn drill_markdown(&self, id: &str) -> Result<String, EngineError> {
        let repo = self.open_primary()?;
        let snap = repo.find_snapshot(DRILLS_ASSET, Some(id))?;
        let manifest = repo.read_manifest(&snap)?;
        let mut bytes = Vec::new();
        repo.dump_artifact(&snap, &manifest, REPORT_MD, &mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Restores each asset (priority order, P0 first) into a sandbox, checks it and times it,
    /// against the plan's targets. `parallel` assets run at once.
    ///
    /// # Errors
    /// An unknown asset, or a repository that cannot be opened.
    pub fn drill(&self, assets: &[String], parallel: usize) -> Result<DrillReport, EngineError> {
        let started_at = Timestamp::now();
        let clock = std::time::Instant::now();
        let results = self.verify_restore(assets, None, parallel)?;
        let rto_secs = clock.elapsed().as_secs_f64();
        let plan = self.plan();
        let rpo_secs = results.iter().filter_map(|r| r.rpo_secs).max();
        let passed = !results.is_empty()
            && results.iter().all(SandboxRestore::passed)
            && rto_secs <= plan.rto.as_secs() as f64;
        Ok(DrillReport {
            plan: plan.name.clone(),
            started_at,
            rto_secs,
            rto_target_secs: plan.rto.as_secs(),
            rpo_secs,
            rpo_target_secs: plan.rpo.as_secs(),
            parallel: parallel.max(1),
            assets: results,
            passed,
        })
    }
}

/// Restore-time forecast for an asset whose newest snapshot holds `bytes`: the newest past
/// drill that restored it, its time scaled by the size ratio (restores are dominated by
/// loading the data; the sandbox start-up is small beside it). `None` without such a drill.
#[must_use]
pub fn forecast_rto(past: &[DrillReport], asset: &str, bytes: u64) -> Option<f64> {
    let (drilled_secs, drilled_bytes) = past
        .iter()
        .filter_map(|r| r.assets.iter().find(|a| a.asset == asset && a.ok))
        .map(|a| (a.rto_secs, a.bytes))
        .next()?;
    if drilled_bytes == 0 {
        return Some(drilled_secs);
    }
    Some(drilled_secs * bytes as f64 / drilled_bytes as f64)
}

/// `1h 02m`, `4m 10s`, `3.2s`.
#[must_use]
pub fn human_secs(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "pass" } else { "FAIL" }
}

impl DrillReport {
    /// The report as Markdown, in the shape of an incident review: summary, then per asset.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Recovery drill: {}\n", self.plan);
        let _ = writeln!(
            md,
            "{} · {} · {} asset(s), {} at a time\n",
            self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            if self.passed {
                "**passed**"
            } else {
                "**FAILED**"
            },
            self.assets.len(),
            self.parallel
        );
        let _ = writeln!(md, "| | achieved | target | |");
        let _ = writeln!(md, "|---|---|---|---|");
        let _ = writeln!(
            md,
            "| RTO (whole plan) | {} | {} | {} |",
            human_secs(self.rto_secs),
            human_secs(self.rto_target_secs as f64),
            verdict(self.rto_secs <= self.rto_target_secs as f64)
        );
        let _ = writeln!(
            md,
            "| RPO (oldest data) | {} | {} | {} |\n",
            self.rpo_secs
                .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64)),
            human_secs(self.rpo_target_secs as f64),
            verdict(self.rpo_secs.is_some_and(|s| s <= self.rpo_target_secs))
        );
        let _ = writeln!(
            md,
            "| asset | priority | snapshot | RTO / target | RPO / target | fetch | restore | verify | checks | result |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        for a in &self.assets {
            let passed_checks = a.checks.iter().filter(|c| c.ok).count();
            let _ = writeln!(
                md,
                "| {} | {:?} | {} | {} / {} | {} / {} | {} | {} | {} | {}/{} | {} |",
                a.asset,
                a.priority,
                a.snapshot.as_deref().unwrap_or("-"),
                human_secs(a.rto_secs),
                human_secs(a.rto_target_secs as f64),
                a.rpo_secs
                    .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64)),
                human_secs(a.rpo_target_secs as f64),
                human_secs(a.phases.fetch),
                human_secs(a.phases.restore),
                human_secs(a.phases.verify),
                passed_checks,
                a.checks.len(),
                verdict(a.passed())
            );
        }
        for a in &self.assets {
            let _ = writeln!(md, "\n## {}\n", a.asset);
            if let Some(c) = &a.compared {
                let _ = writeln!(md, "- compared with the manifest: {c}");
            }
            for c in &a.checks {
                let _ = writeln!(
                    md,
                    "- check `{}`: {} ({})",
                    c.check,
                    verdict(c.ok),
                    c.output
                );
            }
            for p in &a.problems {
                let _ = writeln!(md, "- problem: {p}");
            }
            if !a.rto_met() {
                let _ = writeln!(md, "- RTO target missed");
            }
            if !a.rpo_met() {
                let _ = writeln!(md, "- RPO target missed: the newest snapshot is too old");
            }
        }
        md
    }

    /// One HTML page, no external resources: the tables of the Markdown report and an SVG
    /// chart of achieved RTO against target per asset.
    #[must_use]
    pub fn to_html(&self) -> String {
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Recovery drill: {plan}</title>\
             <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
             td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}tr.fail td{{background:#fdecea}}.verdict{{font-size:1.3em}}</style></head>\
             <body>{body}</body></html>\n",
            plan = esc_html(&self.plan),
            body = self.to_html_body(),
        )
    }

    /// The chart and the table rows of the HTML report.
    fn html_parts(&self) -> (String, String) {
        let mut rows = String::new();
        for a in &self.assets {
            let _ = write!(
                rows,
                "<tr class=\"{}\"><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
                if a.passed() { "pass" } else { "fail" },
                esc_html(&a.asset),
                a.priority,
                esc_html(a.snapshot.as_deref().unwrap_or("-")),
                human_secs(a.rto_secs),
                human_secs(a.rto_target_secs as f64),
                a.rpo_secs
                    .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64)),
                human_secs(a.rpo_target_secs as f64),
                a.checks.iter().filter(|c| c.ok).count(),
                a.checks.len(),
                esc_html(
                    &a.problems
                        .iter()
                        .chain(&a.missed_targets())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            );
        }
        // Bars: achieved RTO (filled) against the target (outline), on one scale.
        let scale = self
            .assets
            .iter()
            .map(|a| a.rto_secs.max(a.rto_target_secs as f64))
            .fold(1.0_f64, f64::max);
        let (label_w, bar_w, row_h) = (160.0, 480.0, 28.0);
        let height = row_h * self.assets.len() as f64 + 30.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"achieved RTO against target per asset\">",
            label_w + bar_w + 90.0
        );
        for (i, a) in self.assets.iter().enumerate() {
            let y = i as f64 * row_h + 10.0;
            let achieved = bar_w * a.rto_secs / scale;
            let target = bar_w * a.rto_target_secs as f64 / scale;
            let colour = if a.passed() { "#2e7d32" } else { "#c62828" };
            let _ = write!(
                svg,
                "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text>\
                 <rect x=\"{label_w}\" y=\"{y}\" width=\"{target:.1}\" height=\"18\" fill=\"none\" stroke=\"#555\" stroke-dasharray=\"4 2\"/>\
                 <rect x=\"{label_w}\" y=\"{}\" width=\"{achieved:.1}\" height=\"12\" fill=\"{colour}\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
                y + 14.0,
                esc_html(&a.asset),
                y + 3.0,
                label_w + bar_w + 6.0,
                y + 14.0,
                human_secs(a.rto_secs)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{label_w}\" y=\"{}\" font-size=\"11\" fill=\"#555\">filled: achieved RTO · dashed: target · full width {}</text></svg>",
            height - 4.0,
            human_secs(scale)
        );
        (svg, rows)
    }

    /// The report's content without the page around it: the heading, the verdict, the SVG
    /// chart, the table and the JSON (the dashboard shows it inside its own page).
    #[must_use]
    pub fn to_html_body(&self) -> String {
        let (svg, rows) = self.html_parts();
        format!(
            "<h1>Recovery drill: {plan}</h1><p class=\"verdict\">{when} · <strong>{verdict}</strong> · whole plan RTO {rto} (target {rto_t}), RPO {rpo} (target {rpo_t})</p>\
             {svg}<table><tr><th>asset</th><th>priority</th><th>snapshot</th><th>RTO</th><th>target</th><th>RPO</th><th>target</th><th>checks</th><th>problems</th></tr>{rows}</table>\
             <details><summary>JSON</summary><pre>{json}</pre></details>",
            plan = esc_html(&self.plan),
            when = self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            verdict = if self.passed { "passed" } else { "FAILED" },
            rto = human_secs(self.rto_secs),
            rto_t = human_secs(self.rto_target_secs as f64),
            rpo = self
                .rpo_secs
                .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64)),
            rpo_t = human_secs(self.rpo_target_secs as f64),
            json = esc_html(&serde_json::to_string_pretty(self).unwrap_or_default()),
        )
    }

    /// The report in the format its file name asks for: `.md`, `.json` or `.html`.
    ///
    /// # Errors
    /// Another extension.
    pub fn render_for(&self, path: &std::path::Path) -> Result<String, EngineError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("md" | "markdown") => Ok(self.to_markdown()),
            Some("json") => Ok(serde_json::to_string_pretty(self).unwrap_or_default() + "\n"),
            Some("html" | "htm") => Ok(self.to_html()),
            _ => Err(EngineError::usage(
                format!("write the report to {}: unknown format", path.display()),
                Some("name the file .md, .json or .html"),
            )),
        }
    }
}

/// `s` safe inside HTML text and attribute values.
fn esc_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecast_scales_the_last_drill_by_size() {
        let asset = |name: &str, ok: bool, secs: f64, bytes: u64| SandboxRestore {
            asset: name.into(),
            kind: lifeboat_core::AssetKind::Postgres,
            priority: lifeboat_core::Priority::P0,
            snapshot: None,
            snapshot_time: None,
            phases: crate::Phases::default(),
            rto_secs: secs,
            rto_target_secs: 60,
            rpo_secs: None,
            rpo_target_secs: 60,
            bytes,
            compared: None,
            checks: Vec::new(),
            problems: Vec::new(),
            ok,
            missed: Vec::new(),
        };
        let report = |assets| DrillReport {
            plan: "p".into(),
            started_at: Timestamp::UNIX_EPOCH,
            rto_secs: 0.0,
            rto_target_secs: 0,
            rpo_secs: None,
            rpo_target_secs: 0,
            parallel: 1,
            assets,
            passed: true,
        };
        // Newest first: the failed newest drill of db is skipped for the older good one.
        let past = vec![
            report(vec![asset("db", false, 1.0, 100)]),
            report(vec![asset("db", true, 10.0, 1000)]),
        ];
        assert_eq!(forecast_rto(&past, "db", 3000), Some(30.0));
        assert_eq!(forecast_rto(&past, "other", 3000), None);
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human_secs(3.21), "3.2s");
        assert_eq!(human_secs(250.0), "4m 10s");
        assert_eq!(human_secs(3720.0), "1h 02m");
    }
}
