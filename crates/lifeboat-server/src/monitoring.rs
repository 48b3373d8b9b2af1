//! The Prometheus rules and the Grafana dashboard shipped in `deploy/`, held to the metrics
//! this daemon renders: every expression must parse as PromQL and name only metric families
//! `/metrics` declares, so a renamed metric cannot leave a rule that never fires.

use std::collections::BTreeSet;

use crate::{metrics::render, state::Cache};

const RULES: &str = include_str!("../../../deploy/prometheus/lifeboat-rules.yml");
const DASHBOARD: &str = include_str!("../../../deploy/grafana/lifeboat-dashboard.json");

/// The families `/metrics` declares (`# TYPE` lines), whatever the cache holds.
fn declared() -> BTreeSet<String> {
    render("p", &Cache::default(), 0)
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Parses `expr` as PromQL and checks every `lifeboat_*` name in it is declared.
fn check(what: &str, expr: &str, declared: &BTreeSet<String>) {
    if let Err(e) = promql_parser::parser::parse(expr) {
        panic!("{what}: {expr:?} is not PromQL: {e}");
    }
    let mut named = 0;
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("lifeboat_") {
            named += 1;
            assert!(
                declared.contains(word),
                "{what}: {word} is not a metric of /metrics"
            );
        }
    }
    assert!(named > 0, "{what}: {expr:?} names no Lifeboat metric");
}

#[test]
fn every_alert_rule_parses_and_names_real_metrics() {
    let declared = declared();
    let docs = yaml_rust2::YamlLoader::load_from_str(RULES).expect("the rules file is YAML");
    let groups = docs[0]["groups"].as_vec().expect("groups: a list");
    let mut alerts = BTreeSet::new();
    for group in groups {
        for rule in group["rules"].as_vec().expect("rules: a list") {
            let name = rule["alert"].as_str().expect("each rule is an alert");
            assert!(alerts.insert(name.to_owned()), "alert {name} twice");
            check(name, rule["expr"].as_str().expect("expr"), &declared);
            let severity = rule["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("critical" | "warning")),
                "{name}: severity {severity:?}"
            );
            for key in ["summary", "description"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name}: no {key}"
                );
            }
        }
    }
    // What the issue of backups asks a monitoring system to catch.
    for must in [
        "LifeboatBackupMissing",
        "LifeboatRpoBreach",
        "LifeboatCopyLagging",
        "LifeboatWalArchiveLagging",
    ] {
        assert!(alerts.contains(must), "no {must} rule");
    }
}

#[test]
fn every_dashboard_panel_queries_real_metrics() {
    let declared = declared();
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("an id")),
            "{title}: id twice"
        );
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{title}: no gridPos");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            check(title, t["expr"].as_str().expect("expr"), &declared);
        }
    }
}
