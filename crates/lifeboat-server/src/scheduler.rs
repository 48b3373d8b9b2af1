//! The daemon's main loop: due times from the plan's cron expressions, signals, shutdown.

use std::{sync::atomic::Ordering, time::Duration};

use chrono::{DateTime, Utc};
use lifeboat_engine::Engine;
use lifeboat_plan::{ResolvedPlan, Schedule};
use lifeboat_repo::Progress;
use rand::Rng;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    DaemonConfig, DaemonError,
    jobs::{self, JobKind},
    state::AppState,
    streams::Streams,
    watchdog,
};

/// The longest the loop sleeps before looking at the clock again (a suspended host, a clock
/// set back or forward).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// One scheduled job and when it is next due.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub job: JobKind,
    pub schedule: Schedule,
    pub next: Option<DateTime<Utc>>,
}

/// The plan's schedules, each with its next time after `now` (plus jitter).
pub(crate) fn entries(plan: &ResolvedPlan, now: DateTime<Utc>) -> Vec<Entry> {
    let mut out: Vec<Entry> = plan
        .assets
        .iter()
        .filter_map(|a| {
            a.schedule.as_ref().map(|s| Entry {
                job: JobKind::Backup {
                    assets: vec![a.name.clone()],
                },
                schedule: s.clone(),
                next: None,
            })
        })
        .collect();
    for (key, schedule) in plan.schedules.jobs() {
        let job = match key {
            "verify" => JobKind::Verify {
                read_data: plan.schedules.verify_read_data.clone(),
            },
            "drill" => JobKind::Drill { assets: Vec::new() },
            "forget" => JobKind::Forget,
            "prune" => JobKind::Prune,
            _ => JobKind::Copy,
        };
        out.push(Entry {
            job,
            schedule: schedule.clone(),
            next: None,
        });
    }
    for (name, schedule) in &plan.schedules.scenarios {
        out.push(Entry {
            job: JobKind::Scenario { name: name.clone() },
            schedule: schedule.clone(),
            next: None,
        });
    }
    for e in &mut out {
        e.next = next_time(plan, &e.schedule, now);
    }
    out
}

/// The next time `schedule` fires after `now` in the plan's zone, delayed by a random part of
/// the plan's jitter.
pub(crate) fn next_time(
    plan: &ResolvedPlan,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let at = plan.schedules.time_zone.next_after(schedule, now)?;
    let jitter = plan.schedules.jitter;
    if jitter.is_zero() {
        return Some(at);
    }
    let ms = rand::rng().random_range(0..u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX));
    Some(at + chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(0)))
}

/// Keeps the due times of jobs whose schedule did not change across a reload.
fn carry_over(old: &[Entry], mut new: Vec<Entry>) -> Vec<Entry> {
    for e in &mut new {
        if let Some(o) = old
            .iter()
            .find(|o| o.job == e.job && o.schedule == e.schedule)
        {
            e.next = o.next;
        }
    }
    new
}

/// Binds, serves, schedules, until SIGTERM or SIGINT.
pub(crate) async fn serve(config: DaemonConfig, plan: ResolvedPlan) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let state = AppState::new(
        config.plan_path.clone(),
        plan,
        config.token.clone(),
        !addr.ip().is_loopback(),
    );
    let engine = state.engine();
    tracing::info!(
        "daemon for plan {} listening on http://{addr}",
        engine.plan().name
    );
    audit(
        &state,
        "daemon start",
        "ok",
        Some(&format!("listening on {addr}")),
    )
    .await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = crate::http::router(state.clone());
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = http_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!("http server: {e}");
        }
    });
    let watch = tokio::spawn(watchdog::run(
        state.clone(),
        config.check_every,
        stop_rx.clone(),
    ));

    let mut streams = Streams::start(&engine);
    schedule_loop(&state, &mut streams).await;

    // Stop: no new jobs, let running ones finish for the grace period, then cut them short.
    state.0.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let running = state
        .active_jobs()
        .into_iter()
        .filter(|j| j.running)
        .count();
    if running > 0 {
        tracing::info!(
            "stopping: waiting up to {}s for {running} running job(s)",
            config.grace.as_secs()
        );
    }
    if !wait_idle(&state, config.grace).await {
        tracing::warn!("stopping: grace period over, cancelling running jobs");
        tokio::task::spawn_blocking(lifeboat_engine::on_interrupt)
            .await
            .ok();
        if !wait_idle(&state, Duration::from_secs(120)).await {
            tracing::error!("stopping: jobs still running after cancellation; exiting anyway");
        }
    }
    streams.stop().await;
    let _ = server.await;
    let _ = watch.await;
    audit(&state, "daemon stop", "ok", None).await;
    let engine = state.engine();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = engine.save_audit() {
            tracing::warn!("copy the audit log into the repository: {e}");
        }
    })
    .await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// True once no job is waiting or running, false if `limit` passed first.
async fn wait_idle(state: &AppState, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if state.active_jobs().is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn audit(state: &AppState, what: &str, outcome: &str, detail: Option<&str>) {
    let engine = state.engine();
    let (what, outcome, detail) = (
        what.to_owned(),
        outcome.to_owned(),
        detail.map(str::to_owned),
    );
    let _ =
        tokio::task::spawn_blocking(move || engine.audit(&what, &outcome, detail.as_deref())).await;
}

/// Runs due jobs until SIGTERM or SIGINT; SIGHUP reloads the plan (and restarts the WAL
/// streams on it).
async fn schedule_loop(state: &AppState, streams: &mut Streams) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut entries = entries(state.engine().plan(), Utc::now());
    log_next(&entries);
    loop {
        let now = Utc::now();
        for e in &mut entries {
            if e.next.is_some_and(|n| n <= now) {
                let job = e.job.clone();
                let s = state.clone();
                tokio::spawn(async move { jobs::run_when_free(s, job, "schedule").await });
                e.next = next_time(state.engine().plan(), &e.schedule, now);
            }
        }
        let sleep = entries
            .iter()
            .filter_map(|e| e.next)
            .min()
            .and_then(|n| (n - now).to_std().ok())
            .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); return; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); return; }
            _ = hup.recv() => {
                if let Some(plan) = reload(state).await {
                    // The streams follow the new plan (the assets or their connection may
                    // have changed): each stores what it holds, then they start again.
                    std::mem::take(streams).stop().await;
                    *streams = Streams::start(&state.engine());
                    entries = carry_over(&entries, self::entries(&plan, Utc::now()));
                    log_next(&entries);
                }
            }
        }
    }
}

fn log_next(entries: &[Entry]) {
    if entries.is_empty() {
        tracing::info!("the plan schedules nothing: watching RPOs and serving HTTP only");
    }
    for e in entries {
        if let Some(n) = e.next {
            tracing::info!(job = %e.job.key(), schedule = %e.schedule, next = %n, "scheduled");
        } else {
            tracing::warn!(job = %e.job.key(), schedule = %e.schedule, "never due again");
        }
    }
}

/// Loads the plan file again; on success the new plan is in force and returned.
async fn reload(state: &AppState) -> Option<ResolvedPlan> {
    let path = state.0.plan_path.clone();
    let loaded = tokio::task::spawn_blocking(move || lifeboat_plan::load(&path).map_err(Box::new))
        .await
        .ok()?;
    match loaded {
        Ok(plan) => {
            tracing::info!("SIGHUP: plan {} reloaded", plan.name);
            let name = plan.name.clone();
            state.replace_engine(Engine::new(plan.clone(), Progress::hidden()));
            audit(state, "daemon reload", "ok", Some(&format!("plan {name}"))).await;
            watchdog::refresh(state).await;
            Some(plan)
        }
        Err(e) => {
            // PlanError never quotes a secret; its text names file, line and key.
            tracing::error!(
                "SIGHUP: the plan was not reloaded, the running one stays in force: {e}"
            );
            audit(state, "daemon reload", "refused", Some(&e.to_string())).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn plan(extra: &str) -> ResolvedPlan {
        lifeboat_plan::parse(
            &format!(
                "version = 1\n[plan]\nname = \"t\"\n[assets.db]\ntype = \"files\"\npaths = [\"/srv\"]\nschedule = \"0 */6 * * *\"\n{extra}"
            ),
            Path::new("/p/lifeboat.toml"),
        )
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn entries_follow_the_plan_in_its_zone() {
        let p = plan("[schedules]\ntime-zone = \"UTC\"\nprune = \"0 5 * * 0\"\n");
        let e = entries(&p, at("2025-03-01T05:59:00Z"));
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].job,
            JobKind::Backup {
                assets: vec!["db".to_owned()]
            }
        );
        assert_eq!(e[0].next, Some(at("2025-03-01T06:00:00Z")));
        assert_eq!(e[1].job, JobKind::Prune);
        assert_eq!(e[1].next, Some(at("2025-03-02T05:00:00Z")));
    }

    /// `[schedules] scenarios`, with "the first Friday of each quarter" as cron's `5#1`.
    #[test]
    fn scenario_drills_are_scheduled_by_name() {
        let p = plan(
            "[[scenarios]]\nname = \"quarterly-dr\"\nsteps = [{ restore = \"db\" }]\n\
             [schedules]\ntime-zone = \"UTC\"\nscenarios = { quarterly-dr = \"0 9 * 1,4,7,10 5#1\" }\n",
        );
        let e = entries(&p, at("2026-12-05T12:00:00Z"));
        let drill = e
            .iter()
            .find(|e| {
                e.job
                    == JobKind::Scenario {
                        name: "quarterly-dr".to_owned(),
                    }
            })
            .expect("the scenario drill is scheduled");
        // 1 January 2027 is a Friday; 2 April 2027 the first Friday of April.
        assert_eq!(drill.next, Some(at("2027-01-01T09:00:00Z")));
        let after = next_time(&p, &drill.schedule, at("2027-01-01T09:00:00Z"));
        assert_eq!(after, Some(at("2027-04-02T09:00:00Z")));
    }

    #[test]
    fn jitter_delays_within_its_bound() {
        let p = plan("[schedules]\ntime-zone = \"UTC\"\njitter = \"10m\"\n");
        let s = p.assets[0].schedule.clone().unwrap();
        let draws: Vec<DateTime<Utc>> = (0..50)
            .map(|_| next_time(&p, &s, at("2025-03-01T05:59:00Z")).unwrap())
            .collect();
        for n in &draws {
            assert!(
                *n >= at("2025-03-01T06:00:00Z") && *n < at("2025-03-01T06:10:00Z"),
                "{n}"
            );
        }
        // Delayed at all, and spread over the window: 50 uniform draws over 10 minutes all
        // within one 3-minute stretch would happen about once in 10^26 runs.
        let (first, last) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(
            (*last - *first).num_seconds() >= 180,
            "no jitter: every run between {first} and {last}"
        );
        assert!(*last > at("2025-03-01T06:00:00Z"), "never delayed");
    }

    #[test]
    fn a_reload_keeps_unchanged_due_times() {
        let p = plan("[schedules]\ntime-zone = \"UTC\"\njitter = \"10m\"\n");
        let old = entries(&p, at("2025-03-01T05:59:00Z"));
        let new = carry_over(&old, entries(&p, at("2025-03-01T05:59:30Z")));
        assert_eq!(old[0].next, new[0].next);
    }
}
