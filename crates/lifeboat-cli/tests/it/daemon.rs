//! `lifeboat daemon`: a scheduled backup, `/metrics` as Prometheus text, the RPO watchdog's
//! breach and recovery (each notified once), SIGHUP with a broken plan, SIGTERM during a
//! backup, and the token rules.

use std::{
    fs,
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use lifeboat_testing::{Receiver, free_port, http_request};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

use crate::util::{PASSWORD, PASSWORD_ENV, Sandbox, toml_path, toml_str};

pub(crate) const TOKEN: &str = "daemon-api-T0KEN-value";

/// A running daemon, stopped (SIGKILL) when dropped so a failing test leaves nothing behind.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(sb: &Sandbox, extra: &[&str]) -> Self {
        let port = free_port();
        let log = sb.join("daemon.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--config")
            .arg(sb.plan_path())
            .arg("daemon")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--check-every", "1s"])
            .args(extra)
            .current_dir(sb.path())
            .env(PASSWORD_ENV, PASSWORD)
            .env("LIFEBOAT_API_TOKEN", TOKEN)
            .env("LIFEBOAT_LOG", "info,rustic_core=off")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .env_remove("LIFEBOAT_CONFIG")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start lifeboat daemon");
        let d = Self { child, port, log };
        d.poll(
            "the daemon to answer /healthz",
            Duration::from_secs(60),
            || d.get("/healthz").ok().filter(|(s, _)| *s == 200),
        );
        d
    }

    fn get(&self, target: &str) -> anyhow::Result<(u16, String)> {
        http_request(self.port, "GET", target, &[], b"")
    }

    fn json(&self, target: &str) -> Value {
        let (status, body) = self.get(target).unwrap();
        assert_eq!(status, 200, "{target}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `f` every 200 ms until it gives something, or panics with the daemon's log.
    pub(crate) fn poll<T>(
        &self,
        what: &str,
        limit: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- daemon log\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), sig).unwrap();
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit\n--- log\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(name, labels, value)` of every sample, checked by a Prometheus text-format parser.
/// A sample: metric name, sorted labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn samples(text: &str) -> Vec<Sample> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape =
        prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{}: unexpected value {other:?}", s.metric),
            };
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            (s.metric, labels, value)
        })
        .collect()
}

fn sample(samples: &[Sample], name: &str, asset: &str) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == "asset" && v == asset))
        .map(|(_, _, v)| *v)
}

#[test]
fn a_scheduled_backup_runs_and_metrics_parse() {
    let sb = Sandbox::new();
    let site = sb.join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>up</h1>\n").unwrap();
    let plan = format!(
        "[assets.site]\ntype = \"files\"\npaths = [{}]\nschedule = \"* * * * *\"\nrpo = \"1h\"\n\n\
         [schedules]\ntime-zone = \"UTC\"\n",
        toml_path(&site)
    );
    sb.write_plan(&plan);
    sb.run_ok(&["init"]);
    let d = Daemon::start(&sb, &[]);

    // Every minute: within two minutes and a margin for a loaded machine.
    let run = d.poll("a scheduled backup", Duration::from_secs(240), || {
        let runs = d.json("/api/runs?asset=site");
        runs.as_array()?
            .iter()
            .find(|r| r["job"] == "backup" && r["outcome"] == "ok")
            .cloned()
    });
    assert_eq!(run["trigger"], "schedule");
    let snaps = d.json("/api/snapshots?asset=site");
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps:#}");

    // The watchdog has seen the snapshot once its breach is gone.
    let text = d.poll(
        "metrics showing the backup",
        Duration::from_secs(60),
        || {
            let (_, text) = d.get("/metrics").ok()?;
            let s = samples(&text);
            (sample(&s, "lifeboat_asset_rpo_breach", "site") == Some(0.0)).then_some(text)
        },
    );
    let s = samples(&text);
    assert_eq!(sample(&s, "lifeboat_asset_snapshots", "site"), Some(1.0));
    assert_eq!(
        sample(&s, "lifeboat_asset_rpo_target_seconds", "site"),
        Some(3600.0)
    );
    assert!(sample(&s, "lifeboat_asset_last_success_timestamp_seconds", "site").unwrap() > 1.7e9);
    assert!(sample(&s, "lifeboat_asset_last_size_bytes", "site").unwrap() > 0.0);
    assert!(sample(&s, "lifeboat_asset_rpo_age_seconds", "site").is_some());
    assert!(
        s.iter()
            .any(|(n, l, v)| n == "lifeboat_repository_size_bytes"
                && l.iter().any(|(k, r)| k == "repository" && r == "main")
                && *v > 0.0)
    );

    // A broken plan on SIGHUP is refused; the daemon keeps serving the old one.
    fs::write(
        sb.plan_path(),
        format!("{plan}\n[assets.bad]\ntype = \"nope\"\n"),
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    d.poll("the reload to be refused", Duration::from_secs(60), || {
        d.log().contains("was not reloaded").then_some(())
    });
    assert!(d.log().contains("assets.bad.type"), "{}", d.log());
    assert_eq!(d.json("/api/status")["assets"][0]["asset"], "site");
    sb.write_plan(&plan);

    let mut d = d;
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(120)), 0, "{}", d.log());
    let audit = sb.run(&["audit", "verify"]).expect_code(0);
    assert!(audit.stdout.contains("chain intact"), "{}", audit.stdout);
    let log = fs::read_to_string(sb.join(".lifeboat/audit.jsonl")).unwrap();
    assert!(
        log.contains("daemon reload") && log.contains("refused"),
        "{log}"
    );
    assert!(!log.contains(TOKEN) && !d.log().contains(TOKEN));
}

#[test]
fn an_rpo_breach_and_its_recovery_are_each_notified_once() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    sb.write_plan(&format!(
        "[assets.db]\ntype = \"command\"\nbackup = \"echo rows\"\nrpo = \"1h\"\n\n\
         [notify.hook]\ntype = \"webhook\"\nurl = {}\non = [\"rpo-breach\", \"rpo-recovered\"]\n",
        toml_str(&rx.url("/hook"))
    ));
    sb.run_ok(&["init"]);
    let d = Daemon::start(&sb, &[]);

    // No backup yet: a breach.
    let got = rx.wait_for("/hook", Duration::from_secs(60), |r| !r.is_empty());
    let breach = got[0].json();
    assert_eq!(
        (breach["kind"].as_str(), breach["asset"].as_str()),
        (Some("rpo-breach"), Some("db"))
    );

    // Starting a backup needs the token.
    let body = br#"{"assets": ["db"]}"#;
    let (status, text) = http_request(d.port, "POST", "/api/backup", &[], body).unwrap();
    assert_eq!(status, 401, "{text}");
    let (status, text) = http_request(
        d.port,
        "POST",
        "/api/backup",
        &[("Authorization", "Bearer nope")],
        body,
    )
    .unwrap();
    assert_eq!(status, 401, "{text}");
    assert!(!text.contains(TOKEN));
    let auth = format!("Bearer {TOKEN}");
    let (status, text) = http_request(
        d.port,
        "POST",
        "/api/backup",
        &[("Authorization", &auth)],
        body,
    )
    .unwrap();
    assert_eq!(status, 202, "{text}");

    rx.wait_for("/hook", Duration::from_secs(120), |r| {
        r.iter().any(|x| x.json()["kind"] == "rpo-recovered")
    });
    // Let the watchdog look three more times: nothing more is sent.
    for _ in 0..3 {
        let before = d.json("/api/status")["refreshed"]
            .as_str()
            .unwrap()
            .to_owned();
        d.poll("another look", Duration::from_secs(60), || {
            let now = d.json("/api/status")["refreshed"].as_str()?.to_owned();
            (now > before).then_some(())
        });
    }
    let kinds: Vec<String> = rx
        .requests("/hook")
        .iter()
        .map(|r| r.json()["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["rpo-breach", "rpo-recovered"]);
    let events = d.json("/api/events");
    let rpo: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("rpo-"))
        .collect();
    // Newest first.
    assert_eq!(rpo, ["rpo-recovered", "rpo-breach"], "{events:#}");
    assert!(!d.log().contains(TOKEN));
}

#[test]
fn sigterm_during_a_backup_leaves_a_clean_repository() {
    let sb = Sandbox::new();
    let pid_file = sb.join("slow.pid");
    sb.write_plan(&format!(
        "[assets.quick]\ntype = \"command\"\nbackup = \"echo quick\"\n\n\
         [assets.slow]\ntype = \"command\"\nbackup = {}\n",
        toml_str(&format!(
            "echo $$ > {}; head -c 1000000 /dev/urandom; sleep 600; echo late",
            pid_file.display()
        ))
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup", "quick"]);
    let mut d = Daemon::start(&sb, &["--grace", "1s"]);
    let auth = format!("Bearer {TOKEN}");
    let (status, text) = http_request(
        d.port,
        "POST",
        "/api/backup",
        &[("Authorization", &auth)],
        br#"{"assets": ["slow"]}"#,
    )
    .unwrap();
    assert_eq!(status, 202, "{text}");
    let pid: i32 = d.poll("the slow backup to start", Duration::from_secs(60), || {
        fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    // A second request for the same asset is refused while it runs.
    let (status, _) = http_request(
        d.port,
        "POST",
        "/api/backup",
        &[("Authorization", &auth)],
        br#"{"assets": ["slow"]}"#,
    )
    .unwrap();
    assert_eq!(status, 409);

    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(120)), 0, "{}", d.log());
    assert!(d.log().contains("cancelling"), "{}", d.log());
    // The backup command is gone, and it left no snapshot.
    d.poll("the backup command to end", Duration::from_secs(30), || {
        kill(Pid::from_raw(pid), None).is_err().then_some(())
    });
    assert!(sb.snapshots_of("slow").is_empty(), "{:#?}", sb.snapshots());
    assert_eq!(sb.snapshots_of("quick").len(), 1);
    sb.run_ok(&["verify", "--read-data"]);
}

#[test]
fn off_loopback_the_daemon_needs_a_token() {
    let sb = Sandbox::new();
    sb.write_plan("[assets.a]\ntype = \"command\"\nbackup = \"echo a\"\n");
    let run = sb
        .cmd(&["daemon", "--listen", "0.0.0.0:0"])
        .env_remove("LIFEBOAT_API_TOKEN")
        .output()
        .unwrap();
    let run = crate::util::Run::from(run).expect_code(1);
    assert!(run.stderr.contains("needs an API token"), "{}", run.stderr);
    assert!(run.stderr.contains("LIFEBOAT_API_TOKEN"), "{}", run.stderr);
}

/// `[schedules] scenarios`: the daemon rehearses a runbook on sandboxes on its schedule,
/// records the run, keeps the incident report beside the plan and audits it; the live target
/// is not touched.
#[test]
fn a_scheduled_scenario_drill_runs_on_sandboxes() {
    let sb = Sandbox::new();
    let site = sb.join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>up</h1>\n").unwrap();
    sb.write_plan(&format!(
        "[assets.site]\ntype = \"files\"\npaths = [{}]\nrpo = \"1h\"\n\n\
         [[scenarios]]\nname = \"site-loss\"\nsteps = [{{ restore = \"site\" }}, {{ check = \"site\" }}]\n\n\
         [schedules]\ntime-zone = \"UTC\"\nscenarios = {{ site-loss = \"* * * * *\" }}\n",
        toml_path(&site)
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    // Changed after the backup: a live restore would put the old page back.
    fs::write(site.join("index.html"), "<h1>changed</h1>\n").unwrap();
    let d = Daemon::start(&sb, &[]);
    let run = d.poll(
        "a scheduled scenario drill",
        Duration::from_secs(240),
        || {
            d.json("/api/runs")
                .as_array()?
                .iter()
                .find(|r| r["job"] == "recover")
                .cloned()
        },
    );
    assert_eq!(run["outcome"], "ok", "{run:#}");
    assert_eq!(run["trigger"], "schedule", "{run:#}");
    let reports: Vec<_> = fs::read_dir(sb.join(".lifeboat/incidents"))
        .expect("an incident report")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        reports
            .iter()
            .any(|n| n.starts_with("site-loss-") && n.ends_with(".md")),
        "{reports:?}"
    );
    assert_eq!(
        fs::read_to_string(site.join("index.html")).unwrap(),
        "<h1>changed</h1>\n",
        "a drill touches no live target"
    );
    let audit = fs::read_to_string(sb.join(".lifeboat/audit.jsonl")).unwrap();
    assert!(audit.contains("recover site-loss --drill"), "{audit}");
}
