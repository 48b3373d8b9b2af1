//! Text and JSON renderings of the engine's reports. Results go to stdout; logs and progress to
//! stderr.

use std::time::Duration;

use jiff::Timestamp;
use lifeboat_engine::{
    AssetStatus, BackupReport, CopyOutcome, DrillReport, Engine, Finding, ForgetReport, InitReport,
    Level, Outcome, PastDrill, RestoreAction, RestoreReport, SandboxRestore, VerifyReport,
    human_secs,
};
use lifeboat_repo::{LockInfo, PruneSummary, SnapshotInfo};
use serde::Serialize;

fn copy_lines(outcomes: &[CopyOutcome]) {
    for c in outcomes {
        match &c.error {
            None => println!(
                "copied {} snapshot(s) from {} to {}",
                c.copied, c.from, c.repository
            ),
            Some(e) => {
                println!("copy from {} to {} FAILED: {e}", c.from, c.repository);
                if let Some(h) = &c.hint {
                    println!("  hint: {h}");
                }
            }
        }
    }
}

pub struct Output {
    pub json: bool,
}

fn json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: render JSON: {e}"),
    }
}

/// `1.2 GiB`, `340.0 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    lifeboat_engine::human_bytes(n)
}

/// A duration in whole units, as plans write them: `4h 12m`.
pub fn age(secs: u64) -> String {
    let rounded = if secs >= 3600 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// A key or snapshot id's first 8 hex digits.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Where the plan reads a repository's password from, without the password.
fn password_source(source: &lifeboat_plan::PasswordSource) -> String {
    use lifeboat_plan::PasswordSource;
    match source {
        PasswordSource::Env(var) => format!("password-env {var}"),
        PasswordSource::File(p) | PasswordSource::DefaultFile(p) => {
            format!("password-file {}", p.display())
        }
        PasswordSource::Command(_) => "its password-command".to_owned(),
    }
}

/// `1 snapshot`, `3 snapshots`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

impl Output {
    /// Renders what a job of the engine's protocol gave.
    pub fn outcome(&self, engine: &Engine, outcome: &Outcome) {
        match outcome {
            Outcome::Init(r) => self.init(r),
            Outcome::Backup(r) => self.backup(r),
            Outcome::Verify(r) => self.verify(r),
            Outcome::SandboxRestores(r) => self.sandbox_restores(r),
            Outcome::Drill { report, saved } => self.drill(report, saved),
            Outcome::Forget { reports, dry_run } => self.forget(reports, *dry_run),
            Outcome::Prune { summaries, dry_run } => {
                for (repository, summary) in summaries {
                    if summaries.len() > 1 && !self.json {
                        print!("repository {repository}: ");
                    }
                    self.prune(summary, *dry_run);
                }
            }
            Outcome::Copies(o) => self.copies(o),
            Outcome::Restore(r) => self.restore(r),
            // The artifact itself went to stdout.
            Outcome::Dump(bytes) => tracing::info!("wrote {bytes} bytes"),
            Outcome::Scenario { report, written } => {
                if self.json {
                    json(&serde_json::json!({ "report": report, "report-file": written }));
                } else {
                    println!("{}", report.summary());
                    if let Some(p) = written {
                        println!("incident report: {}", p.display());
                    }
                }
            }
            Outcome::KeyAdded(id) => {
                if self.json {
                    println!("{}", serde_json::json!({ "added": id }));
                } else {
                    println!(
                        "added key {}: the repository opens with the new password too",
                        short(id)
                    );
                }
            }
            Outcome::KeyRemoved(id) => {
                if self.json {
                    println!("{}", serde_json::json!({ "removed": id }));
                } else {
                    println!("removed key {}", short(id));
                }
            }
            Outcome::PasswordChanged { new, old } => {
                if self.json {
                    println!("{}", serde_json::json!({ "added": new, "removed": old }));
                } else {
                    println!(
                        "key {} replaces key {}: {}",
                        short(new),
                        short(old),
                        match &engine.primary().password {
                            lifeboat_plan::PasswordSource::DefaultFile(p) =>
                                format!("the new password is in {}", p.display()),
                            other => format!(
                                "give the plan the new password ({}) before the next job",
                                password_source(other)
                            ),
                        }
                    );
                }
            }
            Outcome::Kit(paths) => {
                if self.json {
                    println!("{}", serde_json::json!({ "written": paths }));
                } else {
                    for p in paths {
                        println!("recovery kit: {}", p.display());
                    }
                    println!("Print it, and keep a copy away from this host.");
                }
            }
            Outcome::CatalogRebuilt(rebuilt) => {
                if self.json {
                    println!("{}", serde_json::json!(rebuilt));
                } else {
                    println!(
                        "catalog {} rebuilt: {} drill report(s), {} backup run(s) indexed",
                        engine.catalog_path().display(),
                        rebuilt.drills,
                        rebuilt.runs
                    );
                }
            }
            Outcome::Undeleted {
                repository,
                undeleted,
            } => {
                if self.json {
                    json(&serde_json::json!({ "repository": repository, "undeleted": undeleted }));
                } else if undeleted.restored.is_empty() {
                    println!("{repository}: no object deleted since then");
                } else {
                    let parts: Vec<String> = undeleted
                        .restored
                        .iter()
                        .map(|(dir, n)| format!("{n} in {dir}"))
                        .collect();
                    println!("{repository}: visible again: {}", parts.join(", "));
                    if undeleted.locks_left > 0 {
                        println!("{} lock file(s) left deleted", undeleted.locks_left);
                    }
                    println!(
                        "check it with `lifeboat verify --repo {repository}` or `restic check`"
                    );
                }
            }
            Outcome::AuditPushed(id) => match (id, self.json) {
                (_, true) => println!("{}", serde_json::json!({ "snapshot": id })),
                (Some(id), false) => println!(
                    "audit log copied into the repository: snapshot {}",
                    &id[..8.min(id.len())]
                ),
                (None, false) => println!("no audit log yet: nothing to copy"),
            },
        }
    }

    pub fn init(&self, reports: &[InitReport]) {
        if self.json {
            return json(reports);
        }
        for r in reports {
            println!("created repository {} at {}", r.repository, r.location);
            if let Some(p) = &r.password_file {
                println!();
                println!(
                    "  The repository password was generated into {}",
                    p.display()
                );
                println!("  KEEP A COPY OF IT ELSEWHERE (a password manager, a safe).");
                println!("  Without it, nothing in this repository can ever be restored.");
                println!();
            }
        }
    }

    pub fn backup(&self, report: &BackupReport) {
        if self.json {
            return json(report);
        }
        for a in &report.assets {
            match (&a.snapshot, &a.error) {
                (Some(id), _) => {
                    let what = match a.files {
                        Some(1) => "1 file".to_owned(),
                        Some(n) => format!("{n} files"),
                        None => a
                            .artifacts
                            .iter()
                            .map(|x| x.name.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    println!(
                        "{:<16} ok       snapshot {}  {} read, {} added, {:.1}s  ({what})",
                        a.asset,
                        &id[..8],
                        bytes(a.bytes),
                        bytes(a.added_bytes),
                        a.duration_secs
                    );
                    for w in &a.warnings {
                        println!("{:<16} warning  {w}", "");
                    }
                }
                (None, Some(e)) => {
                    println!("{:<16} FAILED   {e}", a.asset);
                    if let Some(h) = &a.hint {
                        println!("{:<16}          hint: {h}", "");
                    }
                }
                (None, None) => {}
            }
        }
        copy_lines(&report.copies);
    }

    pub fn copies(&self, outcomes: &[CopyOutcome]) {
        if self.json {
            return json(outcomes);
        }
        copy_lines(outcomes);
    }

    pub fn unlocked(&self, removed: &[LockInfo]) {
        if self.json {
            return json(removed);
        }
        if removed.is_empty() {
            println!("no lock removed");
        }
        for l in removed {
            println!("removed lock: {}", l.describe());
        }
    }

    pub fn snapshots(&self, snaps: &[SnapshotInfo]) {
        if self.json {
            return json(snaps);
        }
        if snaps.is_empty() {
            println!("no snapshots");
            return;
        }
        println!(
            "{:<10} {:<20} {:<16} {:<8} {:>10}  note",
            "id", "time", "asset", "kind", "size"
        );
        for s in snaps {
            let note = if s.is_safety() {
                "safety snapshot"
            } else if s.asset.is_none() {
                "not written by Lifeboat"
            } else {
                ""
            };
            println!(
                "{:<10} {:<20} {:<16} {:<8} {:>10}  {note}",
                s.short_id,
                time(s.time),
                s.asset.as_deref().unwrap_or("-"),
                s.kind.map_or_else(|| "-".to_owned(), |k| k.to_string()),
                bytes(s.bytes),
            );
        }
    }

    pub fn restore(&self, r: &RestoreReport) {
        if self.json {
            return json(r);
        }
        let verb = if r.dry_run { "would" } else { "did" };
        println!(
            "restore asset {} from snapshot {} ({})",
            r.asset,
            &r.snapshot[..8],
            time(r.snapshot_time)
        );
        for a in &r.actions {
            let line = match a {
                RestoreAction::SafetySnapshot { asset } => {
                    format!("take a safety snapshot of {asset} as it is now")
                }
                RestoreAction::ReplacePath { path } => format!("replace {}", path.display()),
                RestoreAction::WriteTree { dest } => {
                    format!("write files under {}", dest.display())
                }
                RestoreAction::WriteArtifact { artifact, dest } => {
                    format!("write {artifact} to {}", dest.display())
                }
                RestoreAction::RunRestoreCommand { artifact } => {
                    format!("run the restore command with {artifact} on its stdin")
                }
                RestoreAction::ReplayKeys { target } => {
                    format!("write every key of the snapshot into {target}, TTLs kept")
                }
                RestoreAction::CreateDatabase { target } => format!("create database {target}"),
                RestoreAction::LoadDump { artifact, target } => {
                    format!("load {artifact} into {target}")
                }
                RestoreAction::CheckCounts { target } => {
                    format!("check the rows per table of {target} against the manifest")
                }
                RestoreAction::SwapDatabase {
                    restored,
                    target,
                    kept,
                } => format!("rename {target} to {kept}, then {restored} to {target}"),
                RestoreAction::CreateVolume { volume } => format!("create Docker volume {volume}"),
                RestoreAction::StopContainers { containers } => {
                    format!("stop container(s) {}", containers.join(", "))
                }
                RestoreAction::ReplaceVolume { volume } => format!(
                    "restore into a staging directory inside volume {volume}, then swap the content in"
                ),
                RestoreAction::StartContainers { containers } => {
                    format!("start container(s) {} again", containers.join(", "))
                }
                RestoreAction::RecoverCluster {
                    base,
                    target,
                    wal_files,
                    dest,
                    delta,
                } => format!(
                    "{} base backup {} into {}, replay {wal_files} archived WAL files to {target}, start it once to check, stop it",
                    if *delta {
                        "write what differs from"
                    } else {
                        "extract"
                    },
                    &base[..8.min(base.len())],
                    dest.display()
                ),
            };
            println!("  {verb}: {line}");
        }
        if let Some(f) = &r.files {
            println!(
                "  {} files, {} directories, {}",
                f.files,
                f.dirs,
                bytes(f.bytes)
            );
        } else if r.bytes > 0 {
            println!("  {}", bytes(r.bytes));
        }
        if let Some(keys) = r.keys {
            println!("  {keys} keys written");
        }
        if let Some(tables) = &r.tables {
            let rows: u64 = tables.values().sum();
            println!(
                "  {} tables, {rows} rows, as the manifest says",
                tables.len()
            );
        }
        if let Some(kept) = &r.kept {
            println!("  the previous database is kept at {}", kept.display());
        }
        if let Some(kept) = &r.kept_database {
            println!("  the previous database is kept as {kept}");
        }
        if let Some(d) = &r.damaged {
            println!("  {}", d.line());
        }
        if let Some(to) = &r.recovered_to {
            println!("  recovered: {to}");
        }
        if let Some(d) = &r.delta {
            println!(
                "  delta: {} written, {} already as backed up, {} file(s) removed",
                bytes(d.written_bytes),
                bytes(d.reused_bytes),
                d.removed_files
            );
        }
        if let Some(id) = &r.safety_snapshot {
            println!(
                "  safety snapshot {}: `lifeboat restore {} --snapshot {} --yes` undoes this restore",
                &id[..8],
                r.asset,
                &id[..8]
            );
        }
    }

    pub fn forget(&self, reports: &[ForgetReport], dry_run: bool) {
        if self.json {
            return json(reports);
        }
        let several = reports
            .iter()
            .any(|r| r.repository != reports[0].repository);
        for r in reports {
            if several {
                println!("repository {}, asset {}:", r.repository, r.asset);
            } else {
                println!("asset {}:", r.asset);
            }
            if r.decisions.is_empty() {
                println!("  no snapshots");
            }
            for d in &r.decisions {
                let what = match (d.keep, dry_run) {
                    (true, _) => "keep",
                    (false, true) => "would remove",
                    (false, false) => "removed",
                };
                println!(
                    "  {:<12} {}  {}  {}",
                    what,
                    d.short_id,
                    time(d.time),
                    d.reasons.join(", ")
                );
            }
        }
        if !dry_run {
            println!("run `lifeboat prune` to free the space of removed snapshots");
        }
    }

    pub fn prune(&self, s: &PruneSummary, dry_run: bool) {
        if self.json {
            return json(s);
        }
        let verb = if dry_run { "would remove" } else { "removed" };
        println!(
            "{verb} {} packs ({}), repack {} packs ({})",
            s.packs_removed,
            bytes(s.bytes_removed),
            s.packs_repacked,
            bytes(s.bytes_repacked)
        );
    }

    pub fn verify(&self, r: &VerifyReport) {
        if self.json {
            return json(r);
        }
        let mut findings: Vec<&Finding> = r.findings.iter().collect();
        findings.sort_by_key(|f| f.level != Level::Error);
        for f in findings {
            let level = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
            };
            println!("{level}: {}", f.message);
            if let Some(h) = &f.hint {
                println!("  hint: {h}");
            }
        }
        let head = match r.errors.len() {
            0 => format!("repository {} is consistent", r.repository),
            n => format!("repository {}: {}", r.repository, count(n, "error")),
        };
        let data = match r.read_data.as_deref() {
            None => "pack data not read".to_owned(),
            Some("all") => format!(
                "all pack data read, {} matched their checksums ({} read)",
                count(r.artifacts_verified, "artifact"),
                bytes(r.artifact_bytes_read)
            ),
            Some(share) => format!("about {share} of the pack data read"),
        };
        println!(
            "{head}; {} of {} examined; {data}",
            count(r.snapshots_examined, "snapshot"),
            r.assets.join(", ")
        );
    }

    pub fn status(&self, rows: &[AssetStatus]) {
        if self.json {
            return json(rows);
        }
        println!(
            "{:<16} {:<8} {:<3} {:<10} {:<20} {:>10} {:>8} {:>17}  state",
            "asset", "kind", "pri", "snapshot", "last backup", "age", "rpo", "restore / rto"
        );
        for s in rows {
            let mut state = match (s.age_secs, s.breach) {
                (None, _) => "BREACH (never backed up)".to_owned(),
                (_, true) => "BREACH".to_owned(),
                _ => "ok".to_owned(),
            };
            if s.forecast_over_target {
                state.push_str(", restore forecast over RTO");
            }
            let forecast = s
                .rto_forecast_secs
                .map_or_else(|| "no drill".to_owned(), human_secs);
            println!(
                "{:<16} {:<8} {:<3} {:<10} {:<20} {:>10} {:>8} {:>17}  {state}",
                s.asset,
                s.kind.to_string(),
                s.priority,
                s.last_snapshot.as_deref().unwrap_or("-"),
                s.last_time.map_or_else(|| "-".to_owned(), time),
                s.age_secs.map_or_else(|| "-".to_owned(), age),
                age(s.rpo_secs),
                format!("{forecast} / {}", age(s.rto_secs)),
            );
        }
        let mut repos: Vec<(&str, &str, Option<u64>)> = Vec::new();
        for c in rows.iter().flat_map(|s| &s.copies) {
            if !repos.iter().any(|(r, _, _)| *r == c.repository) {
                repos.push((c.repository.as_str(), c.from.as_str(), c.object_lock_days));
            }
        }
        for (repo, from, lock) in repos {
            println!();
            match lock {
                Some(days) => println!(
                    "repository {repo} (copy of {from}; immutable: Object Lock, {days} days)"
                ),
                None => println!("repository {repo} (copy of {from})"),
            }
            println!(
                "{:<16} {:<10} {:<20} {:>10}  {:<24} state",
                "asset", "snapshot", "last backup", "lag", "retention"
            );
            for s in rows {
                let Some(c) = s.copies.iter().find(|c| c.repository == repo) else {
                    continue;
                };
                let state = match (&c.error, c.breach, c.lag_secs) {
                    (Some(e), _, _) => format!("BREACH: {e}"),
                    (None, true, None) => "BREACH (not copied yet)".to_owned(),
                    (None, true, Some(_)) => "BREACH (lag over rpo)".to_owned(),
                    (None, false, None) => "nothing to copy".to_owned(),
                    (None, false, Some(_)) => "ok".to_owned(),
                };
                println!(
                    "{:<16} {:<10} {:<20} {:>10}  {:<24} {state}",
                    s.asset,
                    c.last_snapshot.as_deref().unwrap_or("-"),
                    c.last_time.map_or_else(|| "-".to_owned(), time),
                    c.lag_secs.map_or_else(|| "-".to_owned(), age),
                    // The copy's own rules, or the asset's, which then apply there too.
                    c.retention.as_deref().unwrap_or("the asset's"),
                );
            }
        }
    }

    pub fn sandbox_restores(&self, results: &[SandboxRestore]) {
        if self.json {
            return json(results);
        }
        for r in results {
            let head = format!(
                "{} {}",
                r.asset,
                r.snapshot.as_deref().unwrap_or("(no snapshot)")
            );
            if r.ok {
                println!(
                    "{head:<26} ok    restored in {}; {}; checks {}/{}",
                    human_secs(r.rto_secs),
                    r.compared.as_deref().unwrap_or("artifacts as recorded"),
                    r.checks.len(),
                    r.checks.len()
                );
            } else {
                println!("{head:<26} FAIL");
                for p in &r.problems {
                    println!("{:<26}       {p}", "");
                }
            }
        }
    }

    pub fn drill(&self, r: &DrillReport, saved: &str) {
        if self.json {
            return json(r);
        }
        println!(
            "drill of plan {}: {} asset(s), {} at a time",
            r.plan,
            r.assets.len(),
            r.parallel
        );
        println!(
            "{:<16} {:<9} {:>17} {:>17} {:>7}  result",
            "ASSET", "SNAPSHOT", "RTO / TARGET", "RPO / TARGET", "CHECKS"
        );
        for a in &r.assets {
            let rpo = a
                .rpo_secs
                .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64));
            println!(
                "{:<16} {:<9} {:>17} {:>17} {:>7}  {}",
                a.asset,
                a.snapshot.as_deref().unwrap_or("-"),
                format!(
                    "{} / {}",
                    human_secs(a.rto_secs),
                    human_secs(a.rto_target_secs as f64)
                ),
                format!("{rpo} / {}", human_secs(a.rpo_target_secs as f64)),
                format!(
                    "{}/{}",
                    a.checks.iter().filter(|c| c.ok).count(),
                    a.checks.len()
                ),
                if a.passed() { "pass" } else { "FAIL" }
            );
            for p in &a.problems {
                println!("{:<16} {p}", "");
            }
            if a.ok && !a.rto_met() {
                println!("{:<16} restore took longer than the RTO target", "");
            }
            if a.ok && !a.rpo_met() {
                println!(
                    "{:<16} the newest snapshot is older than the RPO target",
                    ""
                );
            }
        }
        println!(
            "whole plan: RTO {} (target {}), RPO {} (target {}): {}",
            human_secs(r.rto_secs),
            human_secs(r.rto_target_secs as f64),
            r.rpo_secs
                .map_or_else(|| "-".to_owned(), |s| human_secs(s as f64)),
            human_secs(r.rpo_target_secs as f64),
            if r.passed { "passed" } else { "FAILED" }
        );
        println!(
            "report kept in the repository: `lifeboat reports --show {}`",
            &saved[..8.min(saved.len())]
        );
    }

    pub fn reports(&self, drills: &[PastDrill]) {
        if self.json {
            return json(drills);
        }
        if drills.is_empty() {
            println!("no drills yet: run `lifeboat drill`");
            return;
        }
        println!(
            "{:<9} {:<20} {:<7} {:>17} {:>6}  failed",
            "REPORT", "WHEN", "RESULT", "RTO / TARGET", "ASSETS"
        );
        for d in drills {
            println!(
                "{:<9} {:<20} {:<7} {:>17} {:>6}  {}",
                d.snapshot,
                time(d.started_at),
                if d.passed { "passed" } else { "FAILED" },
                format!(
                    "{} / {}",
                    human_secs(d.rto_secs),
                    human_secs(d.rto_target_secs as f64)
                ),
                d.assets,
                d.failed.join(", ")
            );
        }
    }
}
