//! The web dashboard, served by the daemon on its own listener from the binary itself: HTML
//! rendered on the server (maud), one stylesheet and one 20-line script embedded, nothing
//! fetched from elsewhere. Every page reads without JavaScript; the script only refreshes
//! the parts marked `data-live` while jobs run.
//!
//! Pages: `/` (overview), `/assets/NAME`, `/assets/NAME/snapshots/ID[?path=P]` (manifest and
//! tree), `…/download?path=P` (a file, or a folder as tar), `/drills`, `/drills/ID`,
//! `/runbooks`, `/runbooks/NAME/dry-run`, `/runbooks/incidents/FILE`, `/activity`, `/pitr`,
//! `/login`. Actions (`POST`, operators only, each with the session's CSRF token, each in
//! the audit log under the user's name): `/actions/backup`, `/actions/drill`,
//! `/runbooks/NAME/run`, `/logout`. See `access` for who may do what.

mod access;
mod actions;
mod asset;
mod charts;
mod layout;
mod ops;
mod overview;

use std::io::Write;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use lifeboat_engine::{EngineError, RecoverRequest, RecoverUi, StepRecord};
use serde::Deserialize;

use access::Who;
pub use access::{Sessions, hash_password, same};
use layout::{error_page, page};

use crate::state::AppState;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/live/overview", get(live_overview))
        .route("/live/jobs", get(live_jobs))
        .route("/assets/{name}", get(asset_page))
        .route("/assets/{name}/snapshots/{id}", get(snapshot_page))
        .route("/assets/{name}/snapshots/{id}/download", get(download))
        .route("/drills", get(drills_page))
        .route("/drills/{id}", get(drill_page))
        .route("/runbooks", get(runbooks_page))
        .route("/runbooks/{name}/dry-run", get(dry_run_page))
        .route("/runbooks/{name}/run", post(actions::run_runbook))
        .route("/runbooks/incidents/{file}", get(incident_page))
        .route("/activity", get(activity_page))
        .route("/pitr", get(pitr_page))
        .route("/login", get(actions::login_page).post(actions::login))
        .route("/logout", post(actions::logout))
        .route("/actions/backup", post(actions::action_backup))
        .route("/actions/drill", post(actions::action_drill))
        .route(
            "/static/style.css",
            get(|| static_file("text/css", include_str!("assets/style.css"))),
        )
        .route(
            "/static/live.js",
            get(|| static_file("text/javascript", include_str!("assets/live.js"))),
        )
}

async fn static_file(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

fn plan_name(state: &AppState) -> String {
    state.engine().plan().name.clone()
}

/// Runs a blocking engine call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(EngineError::usage(
            format!("the request's task failed: {e}"),
            None,
        ))
    })
}

/// The page `view` makes of what the engine gave, or the page that says why it could not.
fn shown<T>(
    state: &AppState,
    who: &Who,
    title: &str,
    section: &str,
    got: Result<T, EngineError>,
    view: impl FnOnce(T) -> maud::Markup,
) -> Response {
    match got {
        Ok(v) => page(title, section, Some(who), &plan_name(state), &view(v)),
        Err(e) => engine_error(state, who, &e),
    }
}

fn engine_error(state: &AppState, who: &Who, e: &EngineError) -> Response {
    let status = match e {
        EngineError::Usage { .. } => StatusCode::BAD_REQUEST,
        EngineError::Repo(lifeboat_repo::RepoError::SnapshotNotFound { .. }) => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_page(
        status,
        Some(who),
        &plan_name(state),
        &e.to_string(),
        e.hint().as_deref(),
    )
}

async fn overview_page(State(state): State<AppState>, who: Who) -> Response {
    page(
        "Overview",
        "/",
        Some(&who),
        &plan_name(&state),
        &overview::page(&state, &who),
    )
}

async fn live_overview(State(state): State<AppState>, who: Who) -> Response {
    layout::fragment(&overview::body(&state, &who))
}

async fn live_jobs(State(state): State<AppState>, _who: Who) -> Response {
    layout::fragment(&overview::jobs(&state))
}

async fn asset_page(State(state): State<AppState>, who: Who, Path(name): Path<String>) -> Response {
    let engine = state.engine();
    let Some(asset) = engine.plan().asset(&name).cloned() else {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            &plan_name(&state),
            &format!("the plan has no asset {name}"),
            None,
        );
    };
    let n = name.clone();
    let data = blocking(move || {
        let mut snapshots = engine.snapshots(Some(&n))?;
        snapshots.sort_by_key(|s| s.time);
        // A drill of every asset restores this one too; 50 drills are years of monthly ones.
        let drills = engine.recent_drills(50).unwrap_or_default();
        Ok(asset::AssetData { snapshots, drills })
    })
    .await;
    shown(&state, &who, &name, "", data, |d| {
        asset::page(&state, &who, &asset, &d)
    })
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    path: Option<String>,
}

async fn snapshot_page(
    State(state): State<AppState>,
    who: Who,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> Response {
    let rel = q.path.unwrap_or_default();
    let engine = state.engine();
    let (n, i, r) = (name.clone(), id.clone(), rel.clone());
    let data = blocking(move || engine.browse(&n, &i, &r)).await;
    shown(
        &state,
        &who,
        &format!("{name} {id}"),
        "",
        data,
        |(d, entries)| asset::snapshot_page(&name, &rel, &d, &entries),
    )
}

/// Bytes written on the blocking thread, sent on to the response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was cancelled")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `name` as a file name in a Content-Disposition header: ASCII letters, digits, `.-_`.
fn download_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.trim_matches('.').is_empty() {
        "download".to_owned()
    } else {
        clean
    }
}

async fn download(
    State(state): State<AppState>,
    who: Who,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> Response {
    // A backup's content leaves the repository here: never to an anonymous reader.
    if who.csrf.is_none() {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(&who),
            &plan_name(&state),
            "downloads need a login",
            Some("log in, as a viewer or an operator"),
        );
    }
    let rel = q.path.unwrap_or_default();
    let engine = state.engine();
    let (n, i, r) = (name.clone(), id.clone(), rel.clone());
    let entry = match blocking(move || engine.browse_entry(&n, &i, &r)).await {
        Ok(e) => e,
        Err(e) => return engine_error(&state, &who, &e),
    };
    let (file_name, kind) = match entry.kind {
        lifeboat_repo::EntryKind::File => (download_name(&entry.name), "application/octet-stream"),
        lifeboat_repo::EntryKind::Dir => (
            format!("{}.tar", download_name(&entry.name)),
            "application/x-tar",
        ),
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                Some(&who),
                &plan_name(&state),
                &format!("{rel} is neither a file nor a folder"),
                None,
            );
        }
    };
    state.engine().audit_as(
        &who.user,
        &format!("download {name} {id} {rel}"),
        "ok",
        None,
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let engine = state.engine();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter(tx.clone());
        if let Err(e) = engine.download(&name, &id, &rel, &mut out) {
            tracing::warn!("download {name} {id} {rel}: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn drills_page(State(state): State<AppState>, who: Who) -> Response {
    let engine = state.engine();
    shown(
        &state,
        &who,
        "Drills",
        "/drills",
        blocking(move || engine.past_drills()).await,
        |past| ops::drills(&who, &past),
    )
}

async fn drill_page(State(state): State<AppState>, who: Who, Path(id): Path<String>) -> Response {
    let engine = state.engine();
    shown(
        &state,
        &who,
        "Drill report",
        "/drills",
        blocking(move || engine.drill_report(&id)).await,
        |report| ops::drill(&report),
    )
}

/// Incident reports beside the plan, newest first.
fn incidents(state: &AppState) -> Vec<String> {
    let dir = state
        .engine()
        .plan()
        .base_dir
        .join(".lifeboat")
        .join("incidents");
    let mut names: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, name))
        })
        .collect();
    names.sort();
    names.into_iter().rev().map(|(_, n)| n).collect()
}

async fn runbooks_page(State(state): State<AppState>, who: Who) -> Response {
    let engine = state.engine();
    let scenarios: Vec<_> = engine
        .plan()
        .scenarios
        .iter()
        .map(|s| (s.clone(), engine.recover_steps(&s.name).unwrap_or_default()))
        .collect();
    let body = ops::runbooks(&who, &scenarios, &incidents(&state));
    page(
        "Runbooks",
        "/runbooks",
        Some(&who),
        &plan_name(&state),
        &body,
    )
}

/// A dry run asks nothing and changes nothing; steps are only described.
struct DryRunUi;

impl RecoverUi for DryRunUi {
    fn step_started(&mut self, _step: &StepRecord, _total: usize) {}
    fn step_finished(&mut self, _step: &StepRecord, _total: usize) {}
    fn ask(&mut self, _question: &str) -> bool {
        false
    }
}

async fn dry_run_page(
    State(state): State<AppState>,
    who: Who,
    Path(name): Path<String>,
) -> Response {
    let engine = state.engine();
    let req = RecoverRequest {
        scenario: name,
        dry_run: true,
        yes: false,
        drill: false,
    };
    shown(
        &state,
        &who,
        "Dry run",
        "/runbooks",
        blocking(move || engine.recover(&req, &mut DryRunUi)).await,
        |report| ops::dry_run(&report),
    )
}

async fn incident_page(
    State(state): State<AppState>,
    who: Who,
    Path(file): Path<String>,
) -> Response {
    // Only a name the listing shows: no path can be named.
    if !incidents(&state).contains(&file) {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            &plan_name(&state),
            &format!("no incident report {file}"),
            Some("see /runbooks for the reports there are"),
        );
    }
    let path = state
        .engine()
        .plan()
        .base_dir
        .join(".lifeboat")
        .join("incidents")
        .join(&file);
    match std::fs::read_to_string(&path) {
        Ok(text) => page(
            &file,
            "/runbooks",
            Some(&who),
            &plan_name(&state),
            &ops::incident(&file, &text),
        ),
        Err(e) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(&who),
            &plan_name(&state),
            &format!("read {}: {e}", path.display()),
            None,
        ),
    }
}

async fn activity_page(State(state): State<AppState>, who: Who) -> Response {
    let engine = state.engine();
    let data = blocking(move || {
        let runs = engine.runs(None, 100)?;
        let events = engine.events(100)?;
        let path = engine.audit_path();
        let audit = lifeboat_engine::audit::recent(&path, 100)?;
        let check = path
            .exists()
            .then(|| lifeboat_engine::audit::verify(&path))
            .transpose()?;
        Ok((runs, events, audit, check))
    })
    .await;
    shown(
        &state,
        &who,
        "Activity",
        "/activity",
        data,
        |(runs, events, audit, check)| ops::activity(&runs, &events, &audit, check.as_ref()),
    )
}

async fn pitr_page(State(state): State<AppState>, who: Who) -> Response {
    let cache = state.cache();
    let engine = state.engine();
    let assets: Vec<String> = cache.wal.iter().map(|w| w.asset.clone()).collect();
    let bases = blocking(move || {
        Ok(assets
            .into_iter()
            .map(|a| {
                let times = engine
                    .snapshots(Some(&a))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.time)
                    .collect();
                (a, times)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    page(
        "PITR",
        "/pitr",
        Some(&who),
        &plan_name(&state),
        &ops::pitr(&cache, &bases),
    )
}
