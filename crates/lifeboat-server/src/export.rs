//! `lifeboat schedule export`: the plan's schedules for an external scheduler, for those who
//! keep one instead of running the daemon. Each scheduled job becomes a systemd service and
//! timer, a crontab line, or a Kubernetes CronJob, running the same `lifeboat` command the
//! daemon would. Nothing here reads a secret: manifests refer to environment variables by name.

use std::{collections::BTreeSet, fmt::Write as _, path::Path};

use lifeboat_core::RepoLocation;
use lifeboat_plan::{PasswordSource, ResolvedPlan, Schedule, SecretSource};
use serde_json::{Value, json};

/// Where the units and manifests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Systemd,
    Cron,
    K8s,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "systemd" => Ok(Self::Systemd),
            "cron" => Ok(Self::Cron),
            "k8s" | "kubernetes" => Ok(Self::K8s),
            other => Err(format!(
                "unknown format {other:?}; expected systemd, cron or k8s"
            )),
        }
    }
}

/// How the exported jobs call Lifeboat.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The `lifeboat` program (systemd, cron): an absolute path is safest.
    pub program: String,
    /// The plan file as the jobs will see it (systemd, cron).
    pub config: String,
    /// The container image (k8s).
    pub image: String,
    /// The namespace (k8s); none written when `None`.
    pub namespace: Option<String>,
    /// The Secret holding every environment variable the plan names (k8s).
    pub secret: String,
    /// The ConfigMap holding `lifeboat.toml` (k8s), mounted at `/etc/lifeboat`.
    pub config_map: String,
}

/// One job to schedule: a name, when, and the `lifeboat` arguments after `--config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// `backup-db`, `verify`, `copy-offsite`...
    pub name: String,
    pub schedule: Schedule,
    pub args: Vec<String>,
}

/// Every scheduled job of the plan: asset backups in plan order, then `[schedules]`.
#[must_use]
pub fn scheduled_jobs(plan: &ResolvedPlan) -> Vec<ScheduledJob> {
    let mut jobs: Vec<ScheduledJob> = plan
        .assets
        .iter()
        .filter_map(|a| {
            a.schedule.as_ref().map(|s| ScheduledJob {
                name: format!("backup-{}", a.name),
                schedule: s.clone(),
                args: vec!["backup".to_owned(), a.name.clone()],
            })
        })
        .collect();
    for (key, schedule) in plan.schedules.jobs() {
        if key == "copy" {
            for r in plan.repositories.iter().filter(|r| r.copy_from.is_some()) {
                jobs.push(ScheduledJob {
                    name: format!("copy-{}", r.name),
                    schedule: schedule.clone(),
                    args: vec![
                        "copy".to_owned(),
                        "--from".to_owned(),
                        r.copy_from.clone().unwrap_or_default(),
                        "--to".to_owned(),
                        r.name.clone(),
                    ],
                });
            }
            continue;
        }
        let mut args = vec![key.to_owned()];
        if matches!(key, "forget" | "prune") {
            // As the daemon does: a copy is never left to grow.
            args.push("--every-repository".to_owned());
        }
        if key == "verify"
            && let Some(share) = &plan.schedules.verify_read_data
        {
            args.push(format!("--read-data={share}"));
        }
        jobs.push(ScheduledJob {
            name: key.to_owned(),
            schedule: schedule.clone(),
            args,
        });
    }
    for (scenario, schedule) in &plan.schedules.scenarios {
        jobs.push(ScheduledJob {
            name: format!("drill-{scenario}"),
            schedule: schedule.clone(),
            args: vec![
                "recover".to_owned(),
                scenario.clone(),
                "--drill".to_owned(),
                "--yes".to_owned(),
            ],
        });
    }
    jobs
}

/// A schedule that cannot be written in the chosen format.
#[derive(Debug, thiserror::Error)]
#[error("schedule {job} ({expr}): {reason}")]
pub struct ExportError {
    pub job: String,
    pub expr: String,
    pub reason: String,
}

/// The plan's schedules in `format`: one text, files separated by `# --- NAME` lines
/// (systemd) or `---` documents (k8s).
///
/// # Errors
/// A cron expression uses something the format cannot say (systemd: `L`, `W`, `#`).
pub fn export(
    plan: &ResolvedPlan,
    format: ExportFormat,
    opts: &ExportOptions,
) -> Result<String, ExportError> {
    let jobs = scheduled_jobs(plan);
    Ok(match format {
        ExportFormat::Cron => cron(plan, &jobs, opts),
        ExportFormat::Systemd => systemd_files(plan, &jobs, opts)?
            .into_iter()
            .map(|(name, text)| format!("# --- {name}\n{text}"))
            .collect::<Vec<_>>()
            .join("\n"),
        ExportFormat::K8s => k8s(plan, &jobs, opts),
    })
}

/// A word for `sh`: quoted unless it is plainly safe.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=%:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn command_line(opts: &ExportOptions, job: &ScheduledJob) -> String {
    let mut words = vec![
        sh_quote(&opts.program),
        "--config".to_owned(),
        sh_quote(&opts.config),
    ];
    words.extend(job.args.iter().map(|a| sh_quote(a)));
    words.join(" ")
}

fn cron(plan: &ResolvedPlan, jobs: &[ScheduledJob], opts: &ExportOptions) -> String {
    let mut out = format!(
        "# Lifeboat plan {}: generated by `lifeboat schedule export --format cron`.\n\
         # Secrets the plan names by environment variable must be set for cron too.\n",
        plan.name
    );
    if let Some(tz) = plan.schedules.time_zone.name() {
        // Honoured by cronie and systemd-cron; Debian's cron reads the system time zone.
        let _ = writeln!(out, "CRON_TZ={tz}");
    }
    if !plan.schedules.jitter.is_zero() {
        out.push_str("# jitter is not applied: cron has no random delay\n");
    }
    if jobs.is_empty() {
        out.push_str("# the plan schedules nothing\n");
    }
    for job in jobs {
        // `%` ends a crontab command: escape it.
        let _ = writeln!(
            out,
            "{} {}",
            job.schedule.expr,
            command_line(opts, job).replace('%', "\\%")
        );
    }
    out
}

/// `(file name, contents)` of every unit: a oneshot service and its timer per job.
///
/// # Errors
/// A cron expression systemd's calendar cannot express.
pub fn systemd_files(
    plan: &ResolvedPlan,
    jobs: &[ScheduledJob],
    opts: &ExportOptions,
) -> Result<Vec<(String, String)>, ExportError> {
    let mut files = Vec::new();
    for job in jobs {
        let unit = format!(
            "lifeboat-{}-{}",
            unit_word(&plan.name),
            unit_word(&job.name)
        );
        let calendars =
            on_calendar(&job.schedule.expr, plan.schedules.time_zone.name()).map_err(|reason| {
                ExportError {
                    job: job.name.clone(),
                    expr: job.schedule.expr.clone(),
                    reason,
                }
            })?;
        let service = format!(
            "[Unit]\nDescription=Lifeboat {plan}: {job}\nWants=network-online.target\nAfter=network-online.target\n\n\
             [Service]\nType=oneshot\nExecStart={cmd}\n# Secrets the plan names by environment variable, e.g.:\n\
             # EnvironmentFile=/etc/lifeboat/{plan}.env\nNice=10\nIOSchedulingClass=idle\n",
            plan = plan.name,
            job = job.name,
            cmd = command_line(opts, job).replace('%', "%%"),
        );
        let mut timer = format!(
            "[Unit]\nDescription=Lifeboat {plan}: {job} ({expr})\n\n[Timer]\n",
            plan = plan.name,
            job = job.name,
            expr = job.schedule.expr
        );
        for c in calendars {
            let _ = writeln!(timer, "OnCalendar={c}");
        }
        if !plan.schedules.jitter.is_zero() {
            let _ = writeln!(
                timer,
                "RandomizedDelaySec={}",
                plan.schedules.jitter.as_secs()
            );
        }
        timer.push_str("Persistent=true\n\n[Install]\nWantedBy=timers.target\n");
        files.push((format!("{unit}.service"), service));
        files.push((format!("{unit}.timer"), timer));
    }
    Ok(files)
}

/// Lowercase letters, digits and `-`: safe in unit names and Kubernetes object names.
fn unit_word(s: &str) -> String {
    let w: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    w.trim_matches('-').to_owned()
}

/// One cron field: its range and the names it accepts (index = value - offset).
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    name_base: u32,
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
};
const DOM: Field = Field {
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    name_base: 1,
};
const DOW: Field = Field {
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    name_base: 0,
};

/// The values a field matches, and whether it was unrestricted (`*`).
fn expand(field: &Field, text: &str) -> Result<(BTreeSet<u32>, bool), String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Ok(n) = s.parse::<u32>() {
            return Ok(n);
        }
        let lower = s.to_ascii_lowercase();
        field
            .names
            .iter()
            .position(|n| *n == lower)
            .map(|i| i as u32 + field.name_base)
            .ok_or_else(|| {
                format!("{s:?} cannot be written as a systemd calendar; use --format cron")
            })
    };
    let mut set = BTreeSet::new();
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step {s:?}"))?),
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" | "?" => {
                star |= step == 1;
                (field.min, field.max)
            }
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, field.max),
                None => (value(r)?, value(r)?),
            },
        };
        if step == 0 || lo > hi || hi > field.max || lo < field.min {
            return Err(format!("{part:?} is out of range"));
        }
        set.extend((lo..=hi).step_by(step as usize));
    }
    Ok((set, star))
}

fn list(set: &BTreeSet<u32>) -> String {
    set.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// systemd `OnCalendar=` values equal to a 5-field cron expression. Cron fires when either
/// day field matches if both are restricted; systemd needs both, so that case gives two values.
///
/// # Errors
/// Syntax systemd has no equivalent for (`L`, `W`, `#`).
pub fn on_calendar(expr: &str, tz: Option<&str>) -> Result<Vec<String>, String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let [min, hour, dom, month, dow] = f.as_slice() else {
        return Err("expected 5 fields".to_owned());
    };
    let (min, min_all) = expand(&MINUTE, min)?;
    let (hour, hour_all) = expand(&HOUR, hour)?;
    let (dom, dom_all) = expand(&DOM, dom)?;
    let (month, month_all) = expand(&MONTH, month)?;
    let (mut dow, dow_all) = expand(&DOW, dow)?;
    if dow.remove(&7) {
        dow.insert(0);
    }
    let all = |set: &BTreeSet<u32>, star: bool| if star { "*".to_owned() } else { list(set) };
    let time = format!("{}:{}:00", all(&hour, hour_all), all(&min, min_all));
    let month = all(&month, month_all);
    let days: Vec<&str> = dow
        .iter()
        .map(|d| ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][*d as usize])
        .collect();
    let suffix = tz.map(|t| format!(" {t}")).unwrap_or_default();
    let with_dow = format!("{} *-{month}-* {time}{suffix}", days.join(","));
    let with_dom = format!("*-{month}-{} {time}{suffix}", all(&dom, dom_all));
    Ok(match (dom_all, dow_all) {
        (_, true) => vec![with_dom],
        (true, false) => vec![with_dow],
        (false, false) => vec![with_dom, with_dow],
    })
}

/// The environment variables the plan reads secrets from: what a Kubernetes Secret must hold.
#[must_use]
pub fn secret_env_vars(plan: &ResolvedPlan) -> Vec<String> {
    let mut vars = BTreeSet::new();
    let mut env = |s: Option<&SecretSource>| {
        if let Some(SecretSource::Env(v)) = s {
            vars.insert(v.clone());
        }
    };
    for n in &plan.notify {
        env(n.url.as_ref());
        env(n.routing_key.as_ref());
        env(n
            .email
            .as_ref()
            .and_then(|m| m.login.as_ref())
            .map(|(_, p)| p));
    }
    for u in &plan.dashboard.users {
        env(Some(&u.password_hash));
    }
    for a in &plan.assets {
        for secret in lifeboat_engine::describe(a).secrets {
            env(Some(&secret));
        }
    }
    for r in &plan.repositories {
        if let PasswordSource::Env(v) = &r.password {
            vars.insert(v.clone());
        }
        match (&r.s3_credentials, &r.location) {
            (Some(c), _) => {
                vars.insert(c.access_key_id_env.clone());
                vars.insert(c.secret_access_key_env.clone());
            }
            (None, RepoLocation::S3(_)) => {
                vars.insert("AWS_ACCESS_KEY_ID".to_owned());
                vars.insert("AWS_SECRET_ACCESS_KEY".to_owned());
            }
            (None, RepoLocation::Local { .. }) => {}
        }
    }
    vars.into_iter().collect()
}

/// A Kubernetes object name: DNS-1123, at most 52 characters (CronJob's limit).
fn k8s_name(plan: &str, job: &str) -> String {
    let name = format!("lifeboat-{}-{}", unit_word(plan), unit_word(job));
    if name.len() <= 52 {
        return name;
    }
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        format!("{:08x}", h.finish() as u32)
    };
    format!("{}-{digest}", name[..43].trim_end_matches('-'))
}

fn k8s(plan: &ResolvedPlan, jobs: &[ScheduledJob], opts: &ExportOptions) -> String {
    let mut docs = vec![format!(
        "# Lifeboat plan {}: generated by `lifeboat schedule export --format k8s`.\n\
         # Needs ConfigMap {} (key lifeboat.toml) and Secret {} (keys: {}).\n",
        plan.name,
        opts.config_map,
        opts.secret,
        {
            let v = secret_env_vars(plan);
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        }
    )];
    let env: Vec<Value> = secret_env_vars(plan)
        .into_iter()
        .map(|v| json!({ "name": v, "valueFrom": { "secretKeyRef": { "name": opts.secret, "key": v } } }))
        .collect();
    for job in jobs {
        let mut metadata = json!({
            "name": k8s_name(&plan.name, &job.name),
            "labels": {
                "app.kubernetes.io/name": "lifeboat",
                "app.kubernetes.io/component": job.args[0],
                "lifeboat/plan": unit_word(&plan.name),
            },
        });
        if let Some(ns) = &opts.namespace {
            metadata["namespace"] = json!(ns);
        }
        let mut args = vec![
            "--config".to_owned(),
            "/etc/lifeboat/lifeboat.toml".to_owned(),
        ];
        args.extend(job.args.iter().cloned());
        let mut spec = json!({
            "schedule": job.schedule.expr,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": { "spec": {
                "backoffLimit": 0,
                "template": { "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "lifeboat",
                        "image": opts.image,
                        "args": args,
                        "env": env,
                        "volumeMounts": [{ "name": "plan", "mountPath": "/etc/lifeboat", "readOnly": true }],
                    }],
                    "volumes": [{ "name": "plan", "configMap": { "name": opts.config_map } }],
                }},
            }},
        });
        if let Some(tz) = plan.schedules.time_zone.name() {
            spec["timeZone"] = json!(tz);
        }
        let doc = json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata,
            "spec": spec,
        });
        let mut text = String::new();
        yaml(&doc, 0, &mut text);
        docs.push(text);
    }
    docs.join("---\n")
}

/// Block-style YAML for a JSON value; strings double-quoted (JSON escapes are YAML escapes).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        let _ = writeln!(out, "{pad}{k}:");
                        yaml(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}{k}:");
                        yaml(v, indent + 2, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{k}: {}", scalar(v));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        yaml(item, indent + 2, &mut inner);
                        // The first key goes on the dash's line.
                        let inner = inner.replacen(&format!("{pad}  "), &format!("{pad}- "), 1);
                        out.push_str(&inner);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", scalar(item));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        // serde_json's string form is a valid YAML double-quoted scalar.
        other => other.to_string(),
    }
}

/// Writes each systemd unit of the plan into `dir`; returns the file names.
///
/// # Errors
/// A schedule systemd cannot express, or a file that cannot be written.
pub fn write_systemd(
    plan: &ResolvedPlan,
    opts: &ExportOptions,
    dir: &Path,
) -> Result<Vec<String>, String> {
    let files = systemd_files(plan, &scheduled_jobs(plan), opts).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_become_systemd_calendars() {
        let cases = [
            ("0 */6 * * *", vec!["*-*-* 0,6,12,18:0:00"]),
            ("30 2 * * *", vec!["*-*-* 2:30:00"]),
            ("0 3 * * 0", vec!["Sun *-*-* 3:0:00"]),
            ("0 3 * * 7", vec!["Sun *-*-* 3:0:00"]),
            ("15 4 1,15 * *", vec!["*-*-1,15 4:15:00"]),
            (
                "0 0 1 jan-mar mon-fri",
                vec!["*-1,2,3-1 0:0:00", "Mon,Tue,Wed,Thu,Fri *-1,2,3-* 0:0:00"],
            ),
            ("* * * * *", vec!["*-*-* *:*:00"]),
            ("5-10/2 * * * *", vec!["*-*-* *:5,7,9:00"]),
        ];
        for (expr, expected) in cases {
            assert_eq!(on_calendar(expr, None).unwrap(), expected, "{expr}");
        }
        assert_eq!(
            on_calendar("0 2 * * *", Some("Europe/Paris")).unwrap(),
            ["*-*-* 2:0:00 Europe/Paris"]
        );
        assert!(on_calendar("0 0 L * *", None).is_err());
        assert!(on_calendar("0 0 * * 1#2", None).is_err());
    }

    #[test]
    fn names_fit_kubernetes() {
        assert_eq!(
            k8s_name("Dev Tools", "backup-db"),
            "lifeboat-dev-tools-backup-db"
        );
        let long = k8s_name(
            "a-very-long-plan-name-for-testing",
            "backup-an-asset-with-a-long-name",
        );
        assert!(long.len() <= 52, "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(sh_quote("/usr/bin/lifeboat"), "/usr/bin/lifeboat");
        assert_eq!(sh_quote("my plan.toml"), "'my plan.toml'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }
}
