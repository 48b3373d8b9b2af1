//! The RPO watchdog: looks at every asset's newest snapshot on a timer (and after each job),
//! raises `rpo-breach` when one is older than its RPO (again every `rpo-reminder` while it
//! lasts) and `rpo-recovered` when a fresh snapshot ends the breach. It also refreshes the
//! figures `/metrics` serves.
//!
//! Where it stands per asset survives a restart through the catalog's events: a daemon
//! started during a breach it already reported does not report it again before the reminder.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use jiff::Timestamp;
use lifeboat_engine::{AssetStatus, Engine, human_secs, notify::Event};
use lifeboat_plan::NotifyEvent;

use crate::state::{AppState, Cache, lock};

/// What the watchdog knows of one asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RpoState {
    pub breached: bool,
    /// When `rpo-breach` was last raised.
    pub notified: Option<Timestamp>,
}

/// What a look at an asset calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpoTransition {
    Breach,
    Reminder,
    Recovered,
}

impl RpoState {
    /// The next state given whether the asset is in breach `now`, and the event to raise.
    #[must_use]
    pub fn step(
        &mut self,
        breach: bool,
        now: Timestamp,
        reminder: Duration,
    ) -> Option<RpoTransition> {
        match (self.breached, breach) {
            (false, true) => {
                *self = Self {
                    breached: true,
                    notified: Some(now),
                };
                Some(RpoTransition::Breach)
            }
            (true, true) => {
                let due = self.notified.is_none_or(|t| {
                    now.as_second() - t.as_second()
                        >= i64::try_from(reminder.as_secs()).unwrap_or(i64::MAX)
                });
                if due {
                    self.notified = Some(now);
                    Some(RpoTransition::Reminder)
                } else {
                    None
                }
            }
            (true, false) => {
                *self = Self::default();
                Some(RpoTransition::Recovered)
            }
            (false, false) => None,
        }
    }
}

/// Per asset, across looks. Keyed by asset name; an asset removed from the plan is forgotten.
static STATES: Mutex<Option<HashMap<String, RpoState>>> = Mutex::new(None);

/// Looks every `every` until `stop` turns true.
pub(crate) async fn run(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        refresh(&state).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Reads the repository (status, repository sizes, drills), updates the cache, and raises
/// RPO events. Runs on a blocking thread; one at a time.
pub(crate) async fn refresh(state: &AppState) {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE.lock().await;
    let engine = state.engine();
    let cache = tokio::task::spawn_blocking(move || look(&engine)).await;
    if let Ok(cache) = cache {
        state.set_cache(cache);
    }
}

fn look(engine: &Engine) -> Cache {
    let mut cache = Cache {
        refreshed: Some(Timestamp::now()),
        ..Cache::default()
    };
    match engine.status() {
        Ok(assets) => {
            watch(engine, &assets);
            cache.assets = assets;
        }
        Err(e) => {
            tracing::warn!("watchdog: {e}");
            cache.error = Some(e.to_string());
        }
    }
    cache.repositories = engine.repository_stats();
    for name in engine.cluster_assets() {
        match engine.wal_status(&name) {
            Ok(s) => cache.wal.push(s),
            Err(e) => tracing::warn!("watchdog: WAL archive of {name}: {e}"),
        }
    }
    if let Ok(drills) = engine.recent_drills(20) {
        // Newest first: the first drill naming an asset is its newest.
        for d in &drills {
            for a in &d.assets {
                cache.drill_rto.entry(a.asset.clone()).or_insert(a.rto_secs);
            }
        }
    }
    cache
}

fn watch(engine: &Engine, assets: &[AssetStatus]) {
    let plan = engine.plan();
    let reminder = plan.schedules.rpo_reminder;
    let now = Timestamp::now();
    let mut guard = lock(&STATES);
    let states = guard.get_or_insert_with(HashMap::new);
    states.retain(|name, _| assets.iter().any(|a| &a.asset == name));
    for a in assets {
        let st = states.entry(a.asset.clone()).or_insert_with(|| {
            // Pick up where the last daemon left off.
            match engine.last_rpo_event(&a.asset) {
                Ok(Some((kind, time))) if kind == "rpo-breach" => RpoState {
                    breached: true,
                    notified: Some(time),
                },
                _ => RpoState::default(),
            }
        });
        let Some(t) = st.step(a.breach, now, reminder) else {
            continue;
        };
        let rpo = human_secs(a.rpo_secs as f64);
        let (kind, summary) = match (t, a.age_secs) {
            (RpoTransition::Recovered, age) => (
                NotifyEvent::RpoRecovered,
                format!(
                    "{} is within its RPO again: newest backup {} old, RPO {rpo}",
                    a.asset,
                    human_secs(age.unwrap_or(0) as f64)
                ),
            ),
            (_, None) => (
                NotifyEvent::RpoBreach,
                format!("{} has no backup, RPO {rpo}", a.asset),
            ),
            (_, Some(age)) => (
                NotifyEvent::RpoBreach,
                format!(
                    "{}: newest backup is {} old, RPO {rpo}",
                    a.asset,
                    human_secs(age as f64)
                ),
            ),
        };
        let summary = if t == RpoTransition::Reminder {
            format!("still in breach: {summary}")
        } else {
            summary
        };
        engine.raise(&Event::new(
            kind,
            &plan.name,
            "watchdog",
            Some(&a.asset),
            summary,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_is_raised_once_reminded_then_recovered() {
        let reminder = Duration::from_secs(3600);
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(t0.as_second() + s).unwrap();
        let mut st = RpoState::default();
        assert_eq!(st.step(false, at(0), reminder), None);
        assert_eq!(st.step(true, at(60), reminder), Some(RpoTransition::Breach));
        assert_eq!(st.step(true, at(120), reminder), None);
        assert_eq!(st.step(true, at(3659), reminder), None);
        assert_eq!(
            st.step(true, at(3660), reminder),
            Some(RpoTransition::Reminder)
        );
        assert_eq!(st.step(true, at(3700), reminder), None);
        assert_eq!(
            st.step(false, at(3800), reminder),
            Some(RpoTransition::Recovered)
        );
        assert_eq!(st.step(false, at(3900), reminder), None);
        assert_eq!(st, RpoState::default());
    }
}
