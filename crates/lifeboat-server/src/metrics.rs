//! `/metrics`: the watchdog's last look in Prometheus' text exposition format (0.0.4).

use std::fmt::Write as _;

use crate::state::Cache;

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let value = if value.is_finite() {
            format!("{value}")
        } else {
            "NaN".to_owned()
        };
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Renders every series; assets without a snapshot have no `last_*` samples.
#[must_use]
#[allow(clippy::cast_precision_loss, reason = "metric values are floats")]
pub fn render(plan: &str, cache: &Cache, running_jobs: usize) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };

    f.head("lifeboat_up", "gauge", "1 while the daemon runs.");
    f.sample("lifeboat_up", &[("plan", plan)], 1.0);
    f.head(
        "lifeboat_jobs_running",
        "gauge",
        "Jobs running or waiting for their assets.",
    );
    f.sample("lifeboat_jobs_running", &[], running_jobs as f64);
    f.head(
        "lifeboat_status_refreshed_timestamp_seconds",
        "gauge",
        "When the daemon last read the repository.",
    );
    f.sample(
        "lifeboat_status_refreshed_timestamp_seconds",
        &[],
        cache
            .refreshed
            .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0),
    );

    type Get = fn(&lifeboat_engine::AssetStatus) -> Option<f64>;
    let per_asset: [(&str, &str, Get); 7] = [
        (
            "lifeboat_asset_last_success_timestamp_seconds",
            "Time of the asset's newest snapshot.",
            |a| a.last_time.map(|t| t.as_millisecond() as f64 / 1000.0),
        ),
        (
            "lifeboat_asset_last_duration_seconds",
            "How long the newest snapshot's backup took.",
            |a| a.last_duration_secs,
        ),
        (
            "lifeboat_asset_last_size_bytes",
            "Bytes read from the source by the newest snapshot.",
            |a| a.last_bytes.map(|b| b as f64),
        ),
        (
            "lifeboat_asset_snapshots",
            "Snapshots of the asset in the primary repository.",
            |a| Some(a.snapshots as f64),
        ),
        (
            "lifeboat_asset_rpo_age_seconds",
            "Age of the newest snapshot (achieved RPO).",
            |a| a.age_secs.map(|s| s as f64),
        ),
        (
            "lifeboat_asset_rpo_target_seconds",
            "The asset's RPO.",
            |a| Some(a.rpo_secs as f64),
        ),
        (
            "lifeboat_asset_rpo_breach",
            "1 when the newest snapshot is older than the RPO, or there is none.",
            |a| Some(if a.breach { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, help, get) in per_asset {
        f.head(name, "gauge", help);
        for a in &cache.assets {
            if let Some(v) = get(a) {
                f.sample(name, &[("asset", &a.asset)], v);
            }
        }
    }
    f.head(
        "lifeboat_asset_rto_target_seconds",
        "gauge",
        "The asset's RTO.",
    );
    for a in &cache.assets {
        f.sample(
            "lifeboat_asset_rto_target_seconds",
            &[("asset", &a.asset)],
            a.rto_secs as f64,
        );
    }
    f.head(
        "lifeboat_asset_last_drill_rto_seconds",
        "gauge",
        "Restore time of the asset in its newest drill (achieved RTO).",
    );
    for a in &cache.assets {
        if let Some(rto) = cache.drill_rto.get(&a.asset) {
            f.sample(
                "lifeboat_asset_last_drill_rto_seconds",
                &[("asset", &a.asset)],
                *rto,
            );
        }
    }

    f.head(
        "lifeboat_repository_size_bytes",
        "gauge",
        "Bytes the repository takes in its store.",
    );
    for r in &cache.repositories {
        if let Some(b) = r.stored_bytes {
            f.sample(
                "lifeboat_repository_size_bytes",
                &[("repository", &r.repository)],
                b as f64,
            );
        }
    }
    f.head(
        "lifeboat_repository_snapshots",
        "gauge",
        "Snapshots in the repository.",
    );
    for r in &cache.repositories {
        if let Some(n) = r.snapshots {
            f.sample(
                "lifeboat_repository_snapshots",
                &[("repository", &r.repository)],
                n as f64,
            );
        }
    }
    f.head(
        "lifeboat_repository_copy_lag_seconds",
        "gauge",
        "Age of the oldest snapshot of the source not yet copied here; 0 when up to date.",
    );
    for r in &cache.repositories {
        if let Some(lag) = r.copy_lag_secs {
            f.sample(
                "lifeboat_repository_copy_lag_seconds",
                &[("repository", &r.repository)],
                lag as f64,
            );
        }
    }
    f.head(
        "lifeboat_repository_copy_pending_snapshots",
        "gauge",
        "Snapshots of the source not yet copied here.",
    );
    for r in &cache.repositories {
        if let Some(n) = r.copy_pending {
            f.sample(
                "lifeboat_repository_copy_pending_snapshots",
                &[("repository", &r.repository)],
                n as f64,
            );
        }
    }
    f.head(
        "lifeboat_repository_up",
        "gauge",
        "1 when the repository could be opened and listed at the last look.",
    );
    for r in &cache.repositories {
        f.sample(
            "lifeboat_repository_up",
            &[("repository", &r.repository)],
            if r.error.is_none() { 1.0 } else { 0.0 },
        );
    }
    wal(&mut f, &cache.wal, cache.refreshed);
    out
}

/// The WAL archive of each `postgres-cluster` asset.
#[allow(clippy::cast_precision_loss, reason = "metric values are floats")]
fn wal(f: &mut Family<'_>, archives: &[lifeboat_engine::WalStatus], now: Option<jiff::Timestamp>) {
    let secs = |t: jiff::Timestamp| t.as_millisecond() as f64 / 1000.0;
    type Get = Box<dyn Fn(&lifeboat_engine::WalStatus) -> Option<f64>>;
    let series: [(&str, &str, Get); 7] = [
        (
            "lifeboat_wal_last_archived_timestamp_seconds",
            "When the newest WAL was stored (a push, or a stream's store).",
            Box::new(move |w| w.newest_push.map(secs)),
        ),
        (
            "lifeboat_wal_archive_lag_seconds",
            "Seconds since the newest WAL was stored, at the last look.",
            Box::new(move |w| {
                let (at, now) = (w.newest_push?, now?);
                Some((secs(now) - secs(at)).max(0.0))
            }),
        ),
        (
            "lifeboat_wal_ready_backlog_segments",
            "Segments the server marked ready that no push stored yet (needs data-dir).",
            Box::new(|w| w.backlog.map(|n| n as f64)),
        ),
        (
            "lifeboat_wal_push_latency_seconds",
            "From the newest pushed segment's last write to its store.",
            Box::new(|w| w.push_latency_secs),
        ),
        (
            "lifeboat_wal_recovery_window_start_timestamp_seconds",
            "The earliest point a restore reaches (the oldest base backup's end).",
            Box::new(move |w| w.window.map(|(from, _)| secs(from))),
        ),
        (
            "lifeboat_wal_recovery_window_end_timestamp_seconds",
            "The latest point a restore reaches.",
            Box::new(move |w| w.window.map(|(_, to)| secs(to))),
        ),
        (
            "lifeboat_wal_gaps",
            "Runs of segments missing from the archive after the oldest base backup.",
            Box::new(|w| Some(w.gaps.len() as f64)),
        ),
    ];
    for (name, help, get) in series {
        f.head(name, "gauge", help);
        for w in archives {
            if let Some(v) = get(w) {
                f.sample(name, &[("asset", &w.asset)], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_sample_line_has_a_declared_family() {
        let text = render("p", &Cache::default(), 0);
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.iter().any(|d| d == name), "{line}");
            }
        }
        assert!(text.contains("lifeboat_up{plan=\"p\"} 1\n"));
    }

    #[test]
    fn a_cluster_archive_shows_its_lag_backlog_window_and_gaps() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let cache = Cache {
            refreshed: Some(at("2026-12-06T10:00:42Z")),
            wal: vec![lifeboat_engine::WalStatus {
                asset: "pg".to_owned(),
                batches: 3,
                files: 9,
                newest_segment: Some("000000010000000000000009".to_owned()),
                archived_to: Some("0/A000000".to_owned()),
                unfinished: None,
                newest_push: Some(at("2026-12-06T10:00:00Z")),
                backlog: Some(3),
                push_latency_secs: Some(0.25),
                window: Some((at("2026-12-06T09:00:00Z"), at("2026-12-06T10:00:00Z"))),
                base_backups: 1,
                gaps: vec![("A".to_owned(), "B".to_owned())],
            }],
            ..Cache::default()
        };
        let text = render("p", &cache, 0);
        for line in [
            "lifeboat_wal_archive_lag_seconds{asset=\"pg\"} 42\n",
            "lifeboat_wal_ready_backlog_segments{asset=\"pg\"} 3\n",
            "lifeboat_wal_push_latency_seconds{asset=\"pg\"} 0.25\n",
            "lifeboat_wal_last_archived_timestamp_seconds{asset=\"pg\"} 1796551200\n",
            "lifeboat_wal_recovery_window_start_timestamp_seconds{asset=\"pg\"} 1796547600\n",
            "lifeboat_wal_gaps{asset=\"pg\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
