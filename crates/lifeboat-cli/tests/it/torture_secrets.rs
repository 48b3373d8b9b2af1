//! Torture: five secrets planted with values found nowhere else (the repository password, a
//! database password, an S3 secret key, a webhook URL and the daemon's API token), every
//! command run at the most verbose log level, and none of them may appear in what any command
//! prints, in any file it writes (reports, catalog, audit log, incident report, daemon log),
//! in a decrypted manifest, or in the arguments of any process while the commands run.

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use lifeboat_testing::{MotoServer, Receiver, free_port, http_request, sandbox::PostgresSandbox};

use crate::util::{PASSWORD_ENV, Run, Sandbox, toml_path, toml_str};

const REPO_PW: &str = "repo-pw-Qx7f2LmZ";
const DB_PW: &str = "db-pw-Hv3kP9sW";
const S3_SECRET: &str = "s3-secret-Rt6yN1cB";
const HOOK_TOKEN: &str = "hook-tok-Jm4wE8qD";
const API_TOKEN: &str = "api-token-Zc5uA2xT";
const SECRETS: [&str; 5] = [REPO_PW, DB_PW, S3_SECRET, HOOK_TOKEN, API_TOKEN];
/// Put on a command line on purpose: the sampler must see it, or it sees nothing.
const CONTROL: &str = "control-arg-Wb8sK3vF";
const BUCKET: &str = "lifeboat-secrets";

/// Samples every process's arguments until stopped; the secrets seen, with the command line.
struct CmdlineSampler {
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<BTreeSet<String>>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl CmdlineSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(BTreeSet::new()));
        let samples = Arc::new(Mutex::new(0));
        let thread = {
            let (stop, hits, samples) = (stop.clone(), hits.clone(), samples.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
                        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
                            continue;
                        };
                        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                        for s in SECRETS
                            .iter()
                            .chain(&[CONTROL])
                            .filter(|s| line.contains(**s))
                        {
                            hits.lock().unwrap().insert(format!("{s} in `{line}`"));
                        }
                    }
                    *samples.lock().unwrap() += 1;
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            hits,
            samples,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let samples = *self.samples.lock().unwrap();
        (samples, self.hits.lock().unwrap().clone())
    }
}

/// Everything a run printed, with what it was, for the sweep.
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, text: &str) {
        self.0.push((what.to_owned(), text.to_owned()));
    }

    /// Every file under `dir`, read as bytes and searched as text.
    fn add_files(&mut self, dir: &Path) {
        for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if entry.file_type().is_file() {
                let bytes = fs::read(entry.path()).unwrap_or_default();
                self.add(
                    &entry.path().display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
            }
        }
    }

    fn leaks(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        for (what, text) in &self.0 {
            for s in SECRETS.iter().filter(|s| text.contains(**s)) {
                leaks.push(format!("{s} in {what}"));
            }
        }
        leaks
    }
}

#[test]
fn planted_secrets_never_leak_at_the_most_verbose_log_level() {
    let pg = PostgresSandbox::start_with_password(None, DB_PW).unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders(id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 300);",
    )
    .unwrap();
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let rx = Receiver::start();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("site")).unwrap();
    fs::write(sb.join("site/index.html"), "<h1>up</h1>\n").unwrap();
    sb.write_raw_plan(&format!(
        "version = 1\n[plan]\nname = \"it\"\n\n\
         [repositories.main]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n\n\
         [repositories.offsite]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\ncopy-from = \"main\"\n\
         access-key-id-env = \"LB_S3_KEY\"\nsecret-access-key-env = \"LB_S3_SECRET\"\n\n\
         [assets.db]\ntype = \"postgres\"\nurl = \"{}\"\npassword-env = \"LB_PG_PW\"\n\n\
         [assets.site]\ntype = \"files\"\npaths = [{}]\n\n\
         [notify.hook]\ntype = \"webhook\"\nurl-env = \"LB_HOOK_URL\"\n\
         on = [\"failure\", \"success\", \"drill-failed\"]\n\n\
         [[scenarios]]\nname = \"db-lost\"\nsteps = [{{ restore = \"db\" }}, {{ check = \"db\" }}]\n",
        toml_path(&sb.repo()),
        toml_str(&format!(
            "s3://{BUCKET}/dr?endpoint={}&region=us-east-1&path-style=true",
            s3.endpoint()
        )),
        pg.url("shop"),
        toml_path(&sb.join("site")),
    ));
    let hook_url = rx.url(&format!("/hook/{HOOK_TOKEN}"));
    let with_secrets = |cmd: &mut Command| {
        cmd.env(PASSWORD_ENV, REPO_PW)
            .env("LB_PG_PW", DB_PW)
            .env("LB_S3_KEY", "test")
            .env("LB_S3_SECRET", S3_SECRET)
            .env("LB_HOOK_URL", &hook_url)
            .env("LIFEBOAT_LOG", "trace");
    };

    let sampler = CmdlineSampler::start();
    let control = Command::new("sh")
        .args(["-c", "sleep 0.5", CONTROL])
        .status()
        .unwrap();
    assert!(control.success());
    let mut seen = Seen(Vec::new());
    let restored = sb.join("restored-site");
    let report_dir = sb.join("reports");
    fs::create_dir_all(&report_dir).unwrap();
    let commands: Vec<(Vec<String>, i32)> = [
        (vec!["init"], 0),
        (vec!["backup"], 0),
        (vec!["--json", "backup"], 0),
        (vec!["status"], 0),
        (vec!["--json", "status"], 0),
        (vec!["snapshots"], 0),
        (vec!["verify", "--read-data"], 0),
        (vec!["--repo", "offsite", "verify", "--read-data"], 0),
        (vec!["copy"], 0),
        (vec!["restore", "db", "--yes"], 0),
        (
            vec!["restore", "site", "--to", restored.to_str().unwrap()],
            0,
        ),
        (vec!["dump", "db"], 0),
        (
            vec![
                "drill",
                "--report",
                report_dir.join("drill.html").to_str().unwrap(),
            ],
            0,
        ),
        (
            vec![
                "drill",
                "--report",
                report_dir.join("drill.md").to_str().unwrap(),
            ],
            0,
        ),
        (
            vec![
                "recover",
                "db-lost",
                "--yes",
                "--report",
                report_dir.join("incident.md").to_str().unwrap(),
            ],
            0,
        ),
        (vec!["forget"], 0),
        (vec!["prune"], 0),
        (vec!["audit", "push"], 0),
        (vec!["plan", "show"], 0),
        (vec!["kit"], 0),
        (
            vec![
                "kit",
                "--out",
                report_dir.join("kit.html").to_str().unwrap(),
            ],
            0,
        ),
        (vec!["plan", "check"], 0),
    ]
    .into_iter()
    .map(|(args, code)| (args.into_iter().map(str::to_owned).collect(), code))
    .collect();
    for (args, code) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = sb.std_cmd(&args);
        with_secrets(&mut cmd);
        let run = Run::from(cmd.output().unwrap());
        assert!(
            run.code == *code || (args[0] == "plan" && run.code == 3),
            "{args:?} exited {}\n{}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
        seen.add(&format!("stdout of {args:?}"), &run.stdout);
        seen.add(&format!("stderr of {args:?}"), &run.stderr);
    }

    // The daemon: its log, /metrics and the JSON API, a backup asked for with the token.
    let hook = format!("/hook/{HOOK_TOKEN}");
    let successes = |r: &[lifeboat_testing::Received]| {
        r.iter().filter(|x| x.json()["kind"] == "success").count()
    };
    let before = successes(&rx.requests(&hook));
    assert!(before > 0, "the webhook was called");
    let port = free_port();
    let log = sb.join("daemon.log");
    let mut daemon = sb.std_cmd(&["daemon", "--listen", &format!("127.0.0.1:{port}")]);
    with_secrets(&mut daemon);
    let mut daemon = daemon
        .env("LIFEBOAT_API_TOKEN", API_TOKEN)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_request(port, "GET", "/healthz", &[], b"")
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        assert!(Instant::now() < deadline, "the daemon did not answer");
        thread::sleep(Duration::from_millis(200));
    }
    let auth = format!("Bearer {API_TOKEN}");
    let (status, body) = http_request(
        port,
        "POST",
        "/api/backup",
        &[("Authorization", &auth)],
        br#"{"assets": ["db"]}"#,
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    seen.add("POST /api/backup", &body);
    rx.wait_for(&hook, Duration::from_secs(120), |r| successes(r) > before);
    for target in [
        "/metrics",
        "/api/status",
        "/api/snapshots",
        "/api/runs",
        "/api/events",
    ] {
        let (status, body) = http_request(port, "GET", target, &[], b"").unwrap();
        assert_eq!(status, 200, "{target}: {body}");
        seen.add(target, &body);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    daemon.wait().unwrap();
    let (samples, cmdline_hits) = sampler.finish();

    // A decrypted manifest, read with stock restic.
    let manifest = Command::new("restic")
        .args(["-r", sb.repo().to_str().unwrap(), "--no-cache"])
        .args([
            "dump",
            "--tag",
            "asset=db",
            "latest",
            "/db/lifeboat-manifest.json",
        ])
        .env("RESTIC_PASSWORD", REPO_PW)
        .output()
        .expect("restic");
    assert!(manifest.status.success(), "{manifest:?}");
    seen.add(
        "the db manifest",
        &String::from_utf8_lossy(&manifest.stdout),
    );
    // Every file Lifeboat wrote: reports, catalog, audit log, incident report, daemon log,
    // the repository itself.
    seen.add_files(sb.path());

    let (control_hits, cmdline_hits): (Vec<String>, Vec<String>) = cmdline_hits
        .into_iter()
        .partition(|hit| hit.starts_with(CONTROL));
    assert!(
        !control_hits.is_empty(),
        "the sampler never saw the control process"
    );
    let mut leaks = seen.leaks();
    leaks.extend(cmdline_hits);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    assert!(
        samples > 100,
        "the process table was sampled {samples} times"
    );
    eprintln!(
        "{} secrets searched in {} outputs and files and {samples} samples of every process's arguments",
        SECRETS.len(),
        seen.0.len()
    );
}
