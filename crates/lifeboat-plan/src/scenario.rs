//! `[[scenarios]]`: runbooks that `lifeboat recover NAME` walks through.

use std::time::Duration;

use crate::{
    config::{ScenarioConfig, StepConfig, unknown},
    document::At,
    error::PlanError,
    key_path::KeyPath,
    resolve::Resolver,
    secret_source::SecretSource,
};

/// A runbook: named steps, run in order, stopping at the first failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedScenario {
    /// What `lifeboat recover NAME` is called with.
    pub name: String,
    /// Shown before the steps run.
    pub description: Option<String>,
    /// How long the whole recovery may take; reported against, not enforced.
    pub rto: Option<Duration>,
    /// Never empty.
    pub steps: Vec<Step>,
}

/// One step of a scenario, decided by its verb key (`{ run = "..." }`, `{ check = "db" }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `{ run = "cmd", timeout = "5m" }`: fails on a non-zero exit.
    Run {
        /// A shell command; `${VAR}` in it is left to the shell.
        run: String,
        /// Killed and failed after this long; no limit unless given.
        timeout: Option<Duration>,
    },
    /// `{ restore = "db", snapshot = "...", to = "...", tables = [...] }`
    Restore {
        /// An asset of the plan.
        asset: String,
        /// A snapshot id (or `latest`); the latest unless given. `${VAR}` in it is expanded
        /// when the step runs ([`crate::expand_now`]).
        snapshot: Option<String>,
        /// Instead of `snapshot`: the newest snapshot taken before this time (`2026-12-05
        /// 10:00` in the plan's time zone, or RFC 3339); `${VAR}` expanded when the step runs.
        before: Option<String>,
        /// A cluster (`postgres-cluster`) recovers to this time (as `before` reads it);
        /// `${VAR}` expanded when the step runs.
        time: Option<String>,
        /// Another target (a database URL, a directory); the asset's own unless given.
        to: Option<String>,
        /// Narrows a database restore to these tables; all when empty.
        tables: Vec<String>,
        /// The repository to restore from (e.g. the off-site copy after losing the host);
        /// the primary unless given.
        from: Option<String>,
    },
    /// `{ check = "db" }`: verify an asset against its manifest and run its checks.
    Check {
        /// An asset of the plan.
        asset: String,
    },
    /// `{ http = "url", expect = 200 }`: send the request until the answer is right.
    Http {
        /// An http:// or https:// URL.
        url: String,
        /// `GET` unless given.
        method: String,
        /// Headers sent as written (no secrets here: they show in `plan show`).
        headers: Vec<(String, String)>,
        /// `Authorization: Bearer` with this token, read when the step runs and never shown.
        bearer: Option<SecretSource>,
        /// The request body.
        data: Option<String>,
        /// The status wanted; 200 unless given.
        expect: u16,
        /// Text the response body must contain, when given.
        body: Option<String>,
        /// Further tries after the first; 0 unless given.
        retries: u32,
        /// Time between tries; 2s unless given.
        interval: Duration,
    },
    /// `{ wait = "cond", timeout = "2m" }`: re-run a shell condition until it succeeds.
    Wait {
        /// A shell command; success ends the wait.
        until: String,
        /// Fails after this long; 5m unless given.
        timeout: Duration,
        /// Time between tries; 2s unless given.
        interval: Duration,
    },
    /// `{ confirm = "Point DNS at the new host" }`: stop until a human confirms (`--yes` skips).
    Confirm {
        /// What the human must have done.
        prompt: String,
    },
    /// `{ notify = "message", target = "ops" }`
    Notify {
        /// The text sent.
        message: String,
        /// A notifier of the plan; every notifier unless given.
        target: Option<String>,
    },
}

/// Defaults for steps that poll. Two seconds is short enough for a service coming up, long
/// enough not to hammer it; five minutes covers a database replaying its WAL.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// The methods an `http` step may send.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

/// What steps may refer to.
pub(crate) struct Names<'n> {
    pub assets: &'n [&'n str],
    pub repositories: &'n [&'n str],
    pub notifiers: &'n [&'n str],
}

pub(crate) fn resolve(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    c: &ScenarioConfig,
    names: &Names<'_>,
) -> Result<ResolvedScenario, PlanError> {
    let Some(name) = &c.name else {
        return Err(r
            .error(&base.key("name"), "missing key")
            .with_hint("name = \"database-corruption\"; run it with `lifeboat recover NAME`"));
    };
    r.name(&base.key("name"), At::Value, name)?;
    let steps_key = base.key("steps");
    let steps = match &c.steps {
        None => {
            return Err(r
                .error(&steps_key, "missing key")
                .with_hint("steps = [{ run = \"...\" }]"));
        }
        Some(s) if s.is_empty() => {
            return Err(r
                .error(&steps_key, "a scenario needs at least one step")
                .with_hint("steps = [{ run = \"...\" }]"));
        }
        Some(s) => s,
    };
    Ok(ResolvedScenario {
        name: name.clone(),
        description: c.description.clone(),
        rto: r.opt_duration(&base.key("rto"), c.rto.as_ref())?,
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, s)| step(r, &steps_key.index(i), s, names))
            .collect::<Result<_, _>>()?,
    })
}

fn step(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    s: &StepConfig,
    names: &Names<'_>,
) -> Result<Step, PlanError> {
    let text = |key: &str, v: &str| r.non_empty(&base.key(key), v).map(str::to_owned);
    let interval = || {
        Ok::<_, PlanError>(
            r.opt_duration(&base.key("interval"), s.interval.as_ref())?
                .unwrap_or(DEFAULT_INTERVAL),
        )
    };
    // `shape` has already checked that exactly one verb is present and no foreign key.
    if let Some(run) = &s.run {
        return Ok(Step::Run {
            run: text("run", run)?,
            timeout: r.opt_duration(&base.key("timeout"), s.timeout.as_ref())?,
        });
    }
    if let Some(asset) = &s.restore {
        if s.time.is_some() && s.before.is_some() {
            return Err(r
                .error(
                    &base.key("time"),
                    "a cluster step recovers to `time` from the base backup before it: `before` is not needed",
                )
                .with_hint("keep `time`; give `snapshot` only to start from an older base backup"));
        }
        if s.snapshot.is_some() && s.before.is_some() {
            return Err(r
                .error(
                    &base.key("before"),
                    "a step restores one snapshot: `snapshot` or `before`, not both",
                )
                .with_hint("keep `before` to take the newest snapshot before a time"));
        }
        return Ok(Step::Restore {
            asset: reference(r, &base.key("restore"), asset, names.assets, "asset")?,
            snapshot: s
                .snapshot
                .as_deref()
                .map(|x| text("snapshot", x))
                .transpose()?,
            before: s.before.as_deref().map(|x| text("before", x)).transpose()?,
            time: s.time.as_deref().map(|x| text("time", x)).transpose()?,
            to: s.to.as_deref().map(|x| text("to", x)).transpose()?,
            tables: s.tables.clone(),
            from: s
                .from
                .as_deref()
                .map(|f| reference(r, &base.key("from"), f, names.repositories, "repository"))
                .transpose()?,
        });
    }
    if let Some(asset) = &s.check {
        return Ok(Step::Check {
            asset: reference(r, &base.key("check"), asset, names.assets, "asset")?,
        });
    }
    if let Some(url) = &s.http {
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(r
                .error(&base.key("http"), "must be an http:// or https:// URL")
                .with_hint("e.g. { http = \"http://localhost:8080/health\", expect = 200 }"));
        }
        let expect = s.expect.unwrap_or(200);
        if !(100..=599).contains(&expect) {
            return Err(r.error(
                &base.key("expect"),
                format!("{expect} is not an HTTP status code (100-599)"),
            ));
        }
        let method = s.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(r
                .error(
                    &base.key("method"),
                    format!("unknown HTTP method {method:?}"),
                )
                .with_hint(format!("one of {}", METHODS.join(", "))));
        }
        let mut headers = Vec::new();
        for (name, value) in s.headers.iter().flatten() {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(r.error(
                    &base.key("headers").key(name),
                    format!("{name:?} is not an HTTP header name"),
                ));
            }
            if name.eq_ignore_ascii_case("authorization") {
                return Err(r
                    .error(
                        &base.key("headers").key(name),
                        "a token in the plan would show in `plan show` and in logs",
                    )
                    .with_hint("give it with bearer-env, bearer-file or bearer-command"));
            }
            headers.push((name.clone(), value.clone()));
        }
        let bearer = r.secret_source(
            base,
            "bearer",
            s.bearer_env.as_ref(),
            s.bearer_file.as_ref(),
            s.bearer_command.as_ref(),
        )?;
        return Ok(Step::Http {
            url: url.clone(),
            method,
            headers,
            bearer,
            data: s.data.clone(),
            expect,
            body: s.body.clone(),
            retries: s.retries.unwrap_or(0),
            interval: interval()?,
        });
    }
    if let Some(until) = &s.wait {
        return Ok(Step::Wait {
            until: text("wait", until)?,
            timeout: r
                .opt_duration(&base.key("timeout"), s.timeout.as_ref())?
                .unwrap_or(DEFAULT_WAIT_TIMEOUT),
            interval: interval()?,
        });
    }
    if let Some(prompt) = &s.confirm {
        return Ok(Step::Confirm {
            prompt: text("confirm", prompt)?,
        });
    }
    if let Some(message) = &s.notify {
        return Ok(Step::Notify {
            message: text("notify", message)?,
            target: s
                .target
                .as_deref()
                .map(|t| reference(r, &base.key("target"), t, names.notifiers, "notifier"))
                .transpose()?,
        });
    }
    Err(r.error(base, "a step needs a verb"))
}

/// A name that must refer to an existing asset or notifier.
fn reference(
    r: &Resolver<'_, '_>,
    path: &KeyPath,
    name: &str,
    known: &[&str],
    what: &str,
) -> Result<String, PlanError> {
    if known.contains(&name) {
        return Ok(name.to_owned());
    }
    let (message, hint) = unknown(&format!("no {what} named {name:?}"), name, known);
    let hint = hint.or_else(|| (known.is_empty()).then(|| format!("the plan defines no {what}")));
    Err(r.error(path, message).or_hint(hint))
}
