//! The example plans of `examples/` run end to end: each against servers the test starts
//! (PostgreSQL, Redis, MariaDB sandboxes, SQLite files, directories, a command standing in for
//! Vault), with at least one destructive scenario per plan: the data is damaged, `recover
//! SCENARIO --yes` runs, the data is back and the incident report is written.
//!
//! Each plan is copied into the test's temp directory unchanged; its `${VAR:-default}` hosts,
//! ports and paths are pointed at the test's servers through the environment. `docker` and
//! `systemctl` are not run for real: a stand-in on `PATH` records its arguments (and fails on
//! request), so the tests can see that the scenario stopped and started the services.

mod atlasia;
mod dev_tools;
mod devops_hub;
mod moltbeat;
mod tool_hub;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::util::{PASSWORD, Run, Sandbox};

/// An example plan copied into a temp directory, with the environment that points it at the
/// test's servers.
pub struct Example {
    pub sb: Sandbox,
    env: Vec<(String, String)>,
    bin: PathBuf,
    /// The plan as shipped, while `local_offsite` has its `object-lock` taken out.
    shipped: Option<String>,
}

impl Example {
    /// `examples/<name>.toml` as `lifeboat.toml` in a new temp directory.
    pub fn new(name: &str) -> Self {
        let sb = Sandbox::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(format!("{name}.toml"));
        fs::copy(&src, sb.plan_path()).expect("copy the example plan");
        let bin = sb.join("bin");
        fs::create_dir_all(&bin).unwrap();
        for tool in ["docker", "systemctl", "kubectl"] {
            stand_in(&bin, tool, &sb.join("calls.log"));
        }
        let mut ex = Self {
            sb,
            env: Vec::new(),
            bin,
            shipped: None,
        };
        ex.set("LIFEBOAT_PASSWORD", PASSWORD);
        ex
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    /// Points the example's off-site copy (variable `var`) at a local directory, and drops its
    /// `object-lock`: a directory keeps no object versions to lock.
    pub fn local_offsite(&mut self, var: &str) {
        let plan = fs::read_to_string(self.sb.plan_path()).unwrap();
        let kept: Vec<&str> = plan
            .lines()
            .filter(|l| !l.starts_with("object-lock = "))
            .collect();
        fs::write(self.sb.plan_path(), kept.join("\n") + "\n").unwrap();
        self.shipped = Some(plan);
        let dir = self.path("offsite").display().to_string();
        self.set(var, dir);
    }

    /// Points the off-site copy (variable `var`) at `url`, a bucket, with the example's
    /// `object-lock` as shipped.
    pub fn bucket_offsite(&mut self, var: &str, url: String) {
        if let Some(plan) = self.shipped.take() {
            fs::write(self.sb.plan_path(), plan).unwrap();
        }
        self.set(var, url);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.sb.join(rel)
    }

    /// `lifeboat --config <plan> ARGS` with the plan's environment and the stand-ins first on
    /// `PATH`; stdin is empty (not a terminal).
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.sb.cmd(args);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run lifeboat"))
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// What the stand-ins were called with, one call per line.
    pub fn calls(&self) -> String {
        fs::read_to_string(self.sb.join("calls.log")).unwrap_or_default()
    }

    /// `recover SCENARIO --yes --report <tmp>/NAME.md`, then the report's text.
    pub fn recover(&self, scenario: &str, code: i32) -> (Run, String) {
        self.recover_with(scenario, code, &[])
    }

    pub fn recover_with(&self, scenario: &str, code: i32, extra: &[(&str, &str)]) -> (Run, String) {
        let report = self.sb.join(&format!("{scenario}.md"));
        let run = self
            .run_with(
                &[
                    "recover",
                    scenario,
                    "--yes",
                    "--report",
                    &report.to_string_lossy(),
                ],
                extra,
            )
            .expect_code(code);
        let text = fs::read_to_string(&report).expect("the incident report is written");
        (run, text)
    }
}

/// A script named `tool` that appends `tool ARGS` to `log` and exits 0, or exits 1 when
/// `$STAND_IN_FAIL` is a part of its arguments.
fn stand_in(dir: &Path, tool: &str, log: &Path) {
    let path = dir.join(tool);
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nif [ -n \"$STAND_IN_FAIL\" ]; then case \"$*\" in *\"$STAND_IN_FAIL\"*) echo \"{tool}: $STAND_IN_FAIL failed\" >&2; exit 1;; esac; fi\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A health endpoint (and webhook receiver): answers every request with 200 and `body`, and
/// keeps each request's line and body, until dropped.
pub struct Health {
    pub addr: String,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
}

impl Health {
    pub fn start(body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let body = body.to_owned();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut request = String::new();
                        let _ = reader.read_line(&mut request);
                        let mut length = 0;
                        let mut line = String::new();
                        // The headers, up to the blank line, then the body.
                        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            line.clear();
                        }
                        let mut content = vec![0; length];
                        let _ = std::io::Read::read_exact(&mut reader, &mut content);
                        log.lock().unwrap().push(format!(
                            "{}{}",
                            request,
                            String::from_utf8_lossy(&content)
                        ));
                        let mut stream = stream;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self {
            addr,
            stop,
            received,
        }
    }

    /// Every request so far: its request line, then its body.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `plan check` on the example as shipped (no variables set): clean.
pub fn assert_example_checks_clean(name: &str) {
    let ex = Example::new(name);
    // A kit for the plan as shipped, which plan check asks for.
    ex.ok(&["kit"]);
    let run = ex.run(&["plan", "check"]);
    assert_eq!(
        run.code, 0,
        "plan check of examples/{name}.toml\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("0 error(s), 0 warning(s)"),
        "{}",
        run.stdout
    );
    let show = ex.ok(&["plan", "show", "--json"]).json();
    assert!(!show["assets"].as_array().unwrap().is_empty());
    assert!(!show["scenarios"].as_array().unwrap().is_empty());
}

/// Common checks on an incident report of a successful live recovery.
pub fn assert_report_complete(report: &str, scenario: &str, restored: &[&str]) {
    assert!(
        report.starts_with(&format!("# Incident Report: {scenario}-")),
        "{report}"
    );
    for section in [
        "## Summary",
        "## Timeline",
        "## Root Cause",
        "## Impact",
        "## Recovery Actions",
        "## Follow-up Items",
        "## Lessons Learned",
    ] {
        assert!(report.contains(section), "no {section} in\n{report}");
    }
    assert!(report.contains("completed"), "{report}");
    assert!(report.contains("RTO target"), "{report}");
    for asset in restored {
        assert!(
            report.contains(&format!("- Data Loss, {asset}: up to ")),
            "no data age for {asset} in\n{report}"
        );
    }
}
