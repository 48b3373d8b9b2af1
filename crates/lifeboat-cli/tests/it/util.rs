//! Shared helpers: a temp directory holding a plan file, the real `lifeboat` binary run against
//! it, and readers for what it printed.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use assert_cmd::Command;
use lifeboat_testing::{CompareOpts, compare_trees, tree_digest};
use serde_json::Value;
use tempfile::TempDir;

/// The password of every test repository, passed as `LB_TEST_PW` on each command.
pub const PASSWORD: &str = "it-repository-password";
/// The environment variable the plans name in `password-env`.
pub const PASSWORD_ENV: &str = "LB_TEST_PW";

/// Byte-for-byte, with the mtimes of files (directories get theirs moved by the restore of
/// their entries).
pub const FILE_MTIMES: CompareOpts = CompareOpts {
    mtimes: true,
    dir_mtimes: false,
};

/// A temp directory with `lifeboat.toml` in it and, by default, the repository at `repo/`.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-it-")
            .tempdir()
            .expect("create temp dir");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<tmp>/<rel>`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn plan_path(&self) -> PathBuf {
        self.join("lifeboat.toml")
    }

    /// The local repository of [`Sandbox::write_plan`]'s plans.
    pub fn repo(&self) -> PathBuf {
        self.join("repo")
    }

    /// Writes a plan with `[repositories.main]` at [`Sandbox::repo`], then `assets`.
    pub fn write_plan(&self, assets: &str) {
        self.write_plan_with_url(&toml_path(&self.repo()), assets);
    }

    /// Writes a plan whose one repository has the `url` given (a TOML string, quoted), then
    /// `assets`.
    pub fn write_plan_with_url(&self, url: &str, assets: &str) {
        self.write_raw_plan(&format!(
            "version = 1\n\n[plan]\nname = \"it\"\n\n[repositories.main]\nurl = {url}\npassword-env = \"{PASSWORD_ENV}\"\n\n{assets}"
        ));
    }

    /// Writes the plan file exactly as given.
    pub fn write_raw_plan(&self, text: &str) {
        fs::write(self.plan_path(), text).expect("write plan");
    }

    /// `lifeboat --config <plan> ARGS` with the repository password, quiet logs without colour,
    /// and UTC as the local time zone (retention buckets snapshots by local day).
    pub fn cmd(&self, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd(args))
    }

    /// [`Sandbox::cmd`] as a `std::process::Command`, for tests that spawn and wait.
    pub fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.arg("--config")
            .arg(self.plan_path())
            .args(args)
            .current_dir(self.path())
            .env("LIFEBOAT_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            // Never ask an EC2 metadata service for S3 keys: no network beyond 127.0.0.1.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(PASSWORD_ENV, PASSWORD)
            .env_remove("LIFEBOAT_CONFIG");
        cmd
    }

    /// Runs `lifeboat ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run lifeboat"))
    }

    /// Runs `lifeboat ARGS`, panicking with its output unless it exits 0.
    pub fn run_ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// `snapshots --json`, parsed.
    pub fn snapshots(&self) -> Vec<Value> {
        match self.run_ok(&["snapshots", "--json"]).json() {
            Value::Array(v) => v,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// The snapshots of `asset`, oldest first.
    pub fn snapshots_of(&self, asset: &str) -> Vec<Value> {
        self.snapshots()
            .into_iter()
            .filter(|s| s["asset"] == asset)
            .collect()
    }

    /// Replaces the temp dir's path by `[TMP]`, for messages and snapshots.
    pub fn filter(&self, text: &str) -> String {
        text.replace(&self.path().display().to_string(), "[TMP]")
    }
}

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout_bytes: Vec<u8>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stdout_bytes: out.stdout,
            stderr: strip_ansi(&String::from_utf8_lossy(&out.stderr)),
        }
    }
}

impl Run {
    /// Panics with stdout and stderr unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON: {e}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Removes terminal colour sequences (`ESC [ ... m`) from log lines.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as a TOML basic string, quotes included.
pub fn toml_path(path: &Path) -> String {
    toml_str(&path.display().to_string())
}

/// A TOML basic string, quotes included.
pub fn toml_str(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// `base` joined with the absolute `path` made relative (`/a/b` under `base` is `base/a/b`),
/// where a restore puts an original path.
pub fn under(base: &Path, path: &Path) -> PathBuf {
    base.join(path.strip_prefix("/").expect("an absolute path"))
}

/// Panics with the list of differences unless the trees under `expected` and `actual` are equal
/// (content, kinds, modes, symlink targets, file mtimes).
#[track_caller]
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    if let Err(diff) = compare_trees(&tree_digest(expected), &tree_digest(actual), FILE_MTIMES) {
        panic!(
            "{} differs from {}: {diff}",
            actual.display(),
            expected.display()
        );
    }
}

/// Every file (not directory) below `dir` with its size: a fingerprint to prove that a command wrote nothing.
/// Empty when `dir` does not exist.
pub fn listing(dir: &Path) -> BTreeMap<PathBuf, u64> {
    if !dir.exists() {
        return BTreeMap::new();
    }
    walkdir(dir)
}

fn walkdir(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("read dir entry");
            let meta = entry.metadata().expect("stat");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), meta.len());
            }
        }
    }
    out
}

/// `restic` (Debian's 0.14) on `repo` with the test password.
pub fn restic(repo: &Path, args: &[&str]) -> Run {
    let out = std::process::Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("TZ", "UTC")
        .env_remove("RESTIC_REPOSITORY")
        .output()
        .expect("run restic (apt-get install restic)");
    Run::from(out)
}

/// The tags of a snapshot as strings.
pub fn tags(snapshot: &Value) -> Vec<&str> {
    snapshot["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Kills the PostgreSQL server of data directory `data` and its backends at once, as a crash
/// would (its `postmaster.pid` stays behind), and waits until they are gone.
pub fn crash_postgres(data: &Path) {
    let pid = std::fs::read_to_string(data.join("postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-P", &pid])
        .status();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    while Path::new(&format!("/proc/{pid}")).exists()
        || std::process::Command::new("pgrep")
            .args(["-P", &pid])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
