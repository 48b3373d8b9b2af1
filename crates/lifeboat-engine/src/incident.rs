//! The incident report of a recovery, in the shape of the incident template the seed plans
//! use (Tool Hub's DISASTER_RECOVERY.md): summary, timeline, root cause, impact, recovery
//! actions, preventive measures, follow-up items, lessons learned. Lifeboat fills in what it
//! knows and leaves the human parts marked for the incident owner.

use std::{
    fmt::Write,
    path::{Path, PathBuf},
};

use crate::{
    EngineError,
    engine::Engine,
    recover::{RecoverMode, RecoverReport, StepStatus},
    report::human_secs,
};

impl Engine {
    /// Writes `report` to `path` (Markdown, or JSON by the extension), or for live and drill
    /// runs to `.lifeboat/incidents/<scenario>-<time>.md` beside the plan; a dry run is
    /// written only when asked. Returns where it went.
    ///
    /// # Errors
    /// The file cannot be written; the recovery itself is done.
    pub fn save_incident(
        &self,
        report: &RecoverReport,
        path: Option<&Path>,
    ) -> Result<Option<PathBuf>, EngineError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if report.mode == RecoverMode::DryRun => return Ok(None),
            None => self
                .plan()
                .base_dir
                .join(".lifeboat")
                .join("incidents")
                .join(format!("{}.md", report.id())),
        };
        let text = report.render_for(&path)?;
        let fail = |e: std::io::Error| {
            EngineError::usage(
                format!("write the incident report to {}: {e}", path.display()),
                Some("choose a writable path with --report; the recovery itself is done"),
            )
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
        Ok(Some(path))
    }
}

const TO_WRITE: &str = "_To be written by the incident owner._";

impl RecoverReport {
    /// The report's id: scenario and start time, e.g. `database-corruption-20260131T140502Z`.
    #[must_use]
    pub fn id(&self) -> String {
        format!(
            "{}-{}",
            self.scenario,
            self.started_at.strftime("%Y%m%dT%H%M%SZ")
        )
    }

    /// One line: how it ended.
    #[must_use]
    pub fn summary(&self) -> String {
        let what = match self.mode {
            RecoverMode::Live => "recovery",
            RecoverMode::DryRun => "dry run",
            RecoverMode::Drill => "drill",
        };
        let rto = format!(
            "{} against a target of {} ({})",
            human_secs(self.rto_secs),
            human_secs(self.rto_target_secs as f64),
            if self.rto_met() { "met" } else { "MISSED" }
        );
        match self.failed_step() {
            None => format!(
                "Scenario {} of plan {}: {what} completed, {} steps in {rto}.",
                self.scenario,
                self.plan,
                self.steps.len()
            ),
            Some(s) => format!(
                "Scenario {} of plan {}: {what} STOPPED at step {} of {} ({}) after {}.",
                self.scenario,
                self.plan,
                s.index,
                self.steps.len(),
                s.title,
                human_secs(self.rto_secs)
            ),
        }
    }

    /// The incident report as Markdown.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let title = match self.mode {
            RecoverMode::Live => "Incident Report",
            RecoverMode::DryRun => "Incident Report (dry run: nothing was changed)",
            RecoverMode::Drill => "Incident Report (drill: sandboxes, no live target touched)",
        };
        let _ = writeln!(md, "# {title}: {}\n", self.id());
        let _ = writeln!(md, "## Summary\n{}", self.summary());
        if let Some(d) = &self.description {
            let _ = writeln!(md, "\nScenario: {d}");
        }
        let _ = writeln!(
            md,
            "\nPlan file: `{}`. Run with{} `--yes`.",
            self.plan_file.display(),
            if self.unattended { "" } else { "out" }
        );

        let _ = writeln!(md, "\n## Timeline");
        let hhmmss = |t: jiff::Timestamp| t.strftime("%H:%M:%S").to_string();
        let _ = writeln!(
            md,
            "- {} - Start: `lifeboat recover {}` ({} UTC)",
            hhmmss(self.started_at),
            self.scenario,
            self.started_at.strftime("%Y-%m-%d")
        );
        for s in &self.steps {
            let Some(at) = s.started_at else { continue };
            let _ = writeln!(
                md,
                "- {} - Step {}: {} - {} ({}){}",
                hhmmss(at),
                s.index,
                s.title,
                s.status.label(),
                human_secs(s.secs),
                s.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        let end = if self.ok { "Resolution" } else { "Stopped" };
        let _ = writeln!(
            md,
            "- {} - {end}: {}",
            hhmmss(self.finished_at),
            if self.ok {
                "every step done"
            } else {
                "first failure; later steps not run"
            }
        );

        let _ = writeln!(md, "\n## Root Cause\n{TO_WRITE}");

        let _ = writeln!(md, "\n## Impact");
        let _ = writeln!(
            md,
            "- Duration: {} (RTO target {}: {})",
            human_secs(self.rto_secs),
            human_secs(self.rto_target_secs as f64),
            if self.rto_met() { "met" } else { "MISSED" }
        );
        if self.restored.is_empty() {
            let _ = writeln!(md, "- Data Loss: no asset was restored");
        }
        for r in &self.restored {
            let _ = writeln!(
                md,
                "- Data Loss, {}: up to {} (snapshot {} taken {} UTC; RPO target {}: {})",
                r.asset,
                human_secs(r.data_age_secs as f64),
                &r.snapshot[..r.snapshot.len().min(8)],
                r.snapshot_time.strftime("%Y-%m-%d %H:%M:%S"),
                human_secs(r.rpo_target_secs as f64),
                if r.data_age_secs <= r.rpo_target_secs {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
        let _ = writeln!(md, "- Users Affected: {TO_WRITE}");

        let _ = writeln!(md, "\n## Recovery Actions");
        let _ = writeln!(md, "| # | step | outcome | time | detail |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for s in &self.steps {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                s.index,
                cell(&s.title),
                s.status.label(),
                if s.status == StepStatus::NotRun {
                    String::new()
                } else {
                    human_secs(s.secs)
                },
                cell(s.detail.as_deref().unwrap_or(""))
            );
        }
        if !self.restored.is_empty() {
            let _ = writeln!(
                md,
                "\n| asset | snapshot | restored to | data age | safety snapshot | roll back with |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|");
            for r in &self.restored {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.asset,
                    &r.snapshot[..r.snapshot.len().min(8)],
                    cell(&r.target),
                    human_secs(r.data_age_secs as f64),
                    r.safety_snapshot.as_deref().unwrap_or("-"),
                    r.rollback
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |c| format!("`{c}`"))
                );
            }
        }
        for r in self.restored.iter().filter(|r| r.damaged.is_some()) {
            if let Some(d) = &r.damaged {
                let _ = writeln!(md, "\n**{}**: {}.", r.asset, d.line());
            }
        }
        if !self.next.is_empty() {
            let _ = writeln!(md, "\n## What To Do Next");
            for (i, n) in self.next.iter().enumerate() {
                let _ = writeln!(md, "{}. {n}", i + 1);
            }
        }

        let _ = writeln!(md, "\n## Preventive Measures\n{TO_WRITE}");

        let _ = writeln!(md, "\n## Follow-up Items");
        for f in &self.follow_up {
            let _ = writeln!(md, "- [ ] {f}");
        }
        let _ = writeln!(
            md,
            "- [ ] Schedule the post-mortem and fill in the sections marked for the incident owner"
        );

        let _ = writeln!(md, "\n## Lessons Learned\n{TO_WRITE}");
        md
    }

    /// The report for `path`: JSON for `.json`, otherwise Markdown.
    ///
    /// # Errors
    /// JSON serialization (not expected).
    pub fn render_for(&self, path: &std::path::Path) -> Result<String, EngineError> {
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(self)
                .map_err(|e| EngineError::usage(format!("render the report: {e}"), None))
        } else {
            Ok(self.to_markdown())
        }
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
