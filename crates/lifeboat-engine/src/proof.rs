//! What a sandbox restore or a live check proves, in one vocabulary for every kind: the
//! comparison with the manifest (rows per table, keys per database, files and bytes), the plan's
//! checks (SQL or shell) and their outcomes, and the time each phase took.

use std::{collections::BTreeMap, path::Path, time::Instant};

use serde::Serialize;

/// One plan check and what it gave.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    pub check: String,
    pub ok: bool,
    /// The query's answer or the command's output tail (or the error).
    pub output: String,
}

/// Time spent in each phase of a sandbox restore, in seconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Phases {
    /// Reading the snapshot's data out of the repository, checksums verified.
    pub fetch: f64,
    /// Starting the sandbox and loading the data into it.
    pub restore: f64,
    /// Comparing with the manifest and running the checks.
    pub verify: f64,
}

/// What one kind's sandbox restore found, before timing and targets are added.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub bytes: u64,
    /// What was compared with the manifest, e.g. `12 tables, 5000 rows as recorded`.
    pub compared: Option<String>,
    pub checks: Vec<CheckOutcome>,
    /// The newest moment the restored data holds, when the kind knows it better than the
    /// snapshot's time (a cluster replayed to its last archived commit): the drill's RPO.
    pub reached: Option<jiff::Timestamp>,
}

/// A phase clock: `lap` returns the seconds since the previous lap.
pub(crate) struct Clock(Instant);

impl From<Instant> for Clock {
    fn from(start: Instant) -> Self {
        Self(start)
    }
}

impl Clock {
    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let secs = now.duration_since(self.0).as_secs_f64();
        self.0 = now;
        secs
    }
}

/// A check's answer counts as passed unless it is false, zero, NULL or absent.
pub(crate) fn truthy(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("" | "f" | "false" | "0" | "NULL" | "FALSE") => false,
        Some(_) => true,
    }
}

pub(crate) fn compare_counts(
    what: &str,
    found: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
) -> Result<String, String> {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(*v))
        .take(5)
        .map(|(k, v)| {
            format!(
                "{k}: {} in the sandbox, {v} in the manifest",
                found
                    .get(k)
                    .map_or_else(|| "missing".to_owned(), u64::to_string)
            )
        })
        .collect();
    if wrong.is_empty() {
        let total: u64 = expected.values().sum();
        Ok(format!("{} {what}, {total} as recorded", expected.len()))
    } else {
        Err(format!("differs from the manifest: {}", wrong.join("; ")))
    }
}

/// What a live check found.
#[derive(Debug, Default)]
pub(crate) struct LiveCheck {
    /// What was compared with the manifest, e.g. `3 tables, 1200 rows as recorded`.
    pub compared: Option<String>,
    /// Why the live target differs from the manifest; a failure only when `strict`.
    pub difference: Option<String>,
    pub checks: Vec<CheckOutcome>,
}

impl LiveCheck {
    /// Problems that fail the step: a difference when the target was just restored from the
    /// manifest's snapshot, and every failed check.
    pub fn problems(&self, strict: bool) -> Vec<String> {
        let mut out = Vec::new();
        if strict && let Some(d) = &self.difference {
            out.push(d.clone());
        }
        for c in self.checks.iter().filter(|c| !c.ok) {
            out.push(format!("check failed: {} ({})", c.check, c.output));
        }
        out
    }
}

/// Counts of `found` against `expected`: exactly, or (Redis, where a restore adds keys and
/// removes none) at least as many per database.
pub(crate) fn compare_live(
    what: &str,
    found: &BTreeMap<String, u64>,
    expected: &BTreeMap<String, u64>,
    at_least: bool,
    out: &mut LiveCheck,
) {
    let result = if at_least {
        let short: Vec<String> = expected
            .iter()
            .filter(|(k, v)| found.get(*k).copied().unwrap_or(0) < **v)
            .take(5)
            .map(|(k, v)| {
                format!(
                    "{k}: {} live, {v} in the snapshot",
                    found.get(k).unwrap_or(&0)
                )
            })
            .collect();
        if short.is_empty() {
            let total: u64 = expected.values().sum();
            Ok(format!(
                "{} {what}, at least the {total} recorded",
                expected.len()
            ))
        } else {
            Err(format!("fewer than in the snapshot: {}", short.join("; ")))
        }
    } else {
        compare_counts(what, found, expected).map_err(|e| e.replace("in the sandbox", "live"))
    };
    match result {
        Ok(c) => out.compared = Some(c),
        Err(d) => out.difference = Some(d),
    }
}

/// Runs shell checks with `env` set; each passes when it exits 0.
pub(crate) fn shell_checks(
    checks: &[String],
    dir: &Path,
    env: &[(&str, String)],
) -> Vec<CheckOutcome> {
    checks
        .iter()
        .map(|check| {
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c").arg(check).current_dir(dir);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let result = run_check(cmd);
            match result {
                Ok(stdout) => CheckOutcome {
                    check: check.clone(),
                    ok: true,
                    output: tail(&stdout),
                },
                Err(e) => CheckOutcome {
                    check: check.clone(),
                    ok: false,
                    output: tail(&e.to_string()),
                },
            }
        })
        .collect()
}

/// How long one shell check may run: `$LIFEBOAT_CHECK_TIMEOUT` seconds, 300 by default. A
/// check that hangs must not hang the drill.
fn check_timeout() -> std::time::Duration {
    let secs = std::env::var("LIFEBOAT_CHECK_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(secs)
}

/// Runs one shell check to its end or its time limit (then its process group is killed).
fn run_check(cmd: std::process::Command) -> std::io::Result<String> {
    run_limited(cmd, Some(check_timeout()), "LIFEBOAT_CHECK_TIMEOUT")
}

/// Runs `cmd` to its end, or kills its process group once `limit` has passed (`why` names
/// where the limit comes from). Returns its stdout; a non-zero exit is an error carrying the
/// tail of its stderr.
pub(crate) fn run_limited(
    cmd: std::process::Command,
    limit: Option<std::time::Duration>,
    why: &str,
) -> std::io::Result<String> {
    let mut child = lifeboat_sources::process::spawn(cmd, false)?;
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut out) = child.child.stdout.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
            let _ = tx.send(text);
        });
    }
    let started = Instant::now();
    while child.child.try_wait()?.is_none() {
        if let Some(limit) = limit
            && started.elapsed() > limit
        {
            // Dropping the child kills its process group, which also ends the reader.
            drop(child);
            return Err(std::io::Error::other(format!(
                "did not finish within {} s ({why})",
                limit.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A process the check left in the background would hold its output open: stop it.
    child.kill_group();
    let stdout = rx
        .recv_timeout(std::time::Duration::from_secs(2))
        .unwrap_or_default();
    child.finish().map(|()| stdout)
}

pub(crate) fn tail(text: &str) -> String {
    let t = text.trim();
    let start = t.len().saturating_sub(300);
    let start = (start..t.len())
        .find(|i| t.is_char_boundary(*i))
        .unwrap_or(0);
    t[start..].to_owned()
}

pub(crate) fn sql_checks(
    checks: &[String],
    mut run: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Vec<CheckOutcome> {
    checks
        .iter()
        .map(|check| match run(check) {
            Ok(value) => CheckOutcome {
                check: check.clone(),
                ok: truthy(value.as_deref()),
                output: value.unwrap_or_else(|| "no rows".to_owned()),
            },
            Err(e) => CheckOutcome {
                check: check.clone(),
                ok: false,
                output: tail(&e),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_answers() {
        assert!(truthy(Some("t")));
        assert!(truthy(Some("42")));
        assert!(!truthy(Some("f")));
        assert!(!truthy(Some("0")));
        assert!(!truthy(None));
    }

    #[test]
    fn counts_compare_with_the_manifest() {
        let expected = BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 0)]);
        assert_eq!(
            compare_counts("tables", &expected, &expected).unwrap(),
            "2 tables, 2 as recorded"
        );
        let found = BTreeMap::from([("a".to_owned(), 1)]);
        let err = compare_counts("tables", &found, &expected).unwrap_err();
        assert!(
            err.contains("a: 1 in the sandbox, 2 in the manifest"),
            "{err}"
        );
        assert!(err.contains("b: missing"), "{err}");
    }
}
