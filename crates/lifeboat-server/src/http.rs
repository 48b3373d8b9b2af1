//! The daemon's HTTP side: thin handlers over [`AppState`].
//!
//! - `GET /healthz`: always open; 200 with `{"status": "ok"}`, or `degraded` and the reason
//!   when the last look at the repository failed.
//! - `GET /metrics`: Prometheus text format.
//! - `GET /api/status`, `GET /api/snapshots[?asset=A]`, `GET /api/runs[?asset=A&limit=N]`,
//!   `GET /api/events[?limit=N]`: JSON.
//! - The web dashboard (`dashboard`): `/`, `/assets/…`, `/drills`, `/runbooks`, `/activity`,
//!   `/pitr`, `/login`, with its own sessions instead of the bearer token.
//! - `POST /api/backup` with `{"assets": [...]}` (all when empty or absent): 202 when started,
//!   409 while one of its assets is in another job.
//!
//! `POST` always needs `Authorization: Bearer TOKEN`; listening off loopback, every route but
//! `/healthz` does. Without a configured token `POST` is refused. The token is compared in
//! constant time and never logged or echoed.

use axum::{
    Json, Router,
    extract::{Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    jobs::{self, JobKind, Refused},
    state::AppState,
};

/// The daemon's routes over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/snapshots", get(snapshots))
        .route("/api/runs", get(runs))
        .route("/api/events", get(events))
        .route("/api/backup", post(backup))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    // The dashboard checks its own sessions: a browser carries a cookie, not a bearer token.
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .merge(crate::dashboard::routes())
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route",
                Some("see / (the dashboard), /healthz, /metrics and /api/status"),
            )
        })
        .with_state(state)
}

fn error(status: StatusCode, message: &str, hint: Option<&str>) -> Response {
    (status, Json(json!({ "error": message, "hint": hint }))).into_response()
}

/// Whether the request carries the configured token.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.0.token else {
        return false;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Equal digests in constant time: neither length nor prefix leaks.
    crate::dashboard::same(given.trim(), token.expose())
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let needs = req.method() == axum::http::Method::POST || state.0.token_everywhere;
    if !needs || authorized(&state, req.headers()) {
        return next.run(req).await;
    }
    if state.0.token.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "this daemon has no API token, so it takes no requests that change anything",
            Some("start it with LIFEBOAT_API_TOKEN or --token-file"),
        );
    }
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token",
        Some("send Authorization: Bearer <token>"),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        "Bearer".parse().expect("static header"),
    );
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    let cache = state.cache();
    let plan = state.engine().plan().name.clone();
    match &cache.error {
        None => Json(json!({ "status": "ok", "plan": plan })).into_response(),
        Some(e) => Json(json!({ "status": "degraded", "plan": plan, "error": e })).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let plan = state.engine().plan().name.clone();
    let text = crate::metrics::render(&plan, &state.cache(), state.active_jobs().len());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn status(State(state): State<AppState>) -> Response {
    let cache = state.cache();
    let mut busy: Vec<String> = jobs::busy_assets(&state).into_iter().collect();
    busy.sort();
    Json(json!({
        "plan": state.engine().plan().name,
        "started": state.0.started,
        "refreshed": cache.refreshed,
        "error": cache.error,
        "assets": cache.assets,
        "repositories": cache.repositories,
        "jobs": state.active_jobs(),
        "busy_assets": busy,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct Filter {
    asset: Option<String>,
    limit: Option<usize>,
}

/// Runs a blocking engine call and answers with its JSON, or its error and hint (500, or 400
/// for a request naming what the plan lacks).
async fn blocking_json<T: serde::Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, lifeboat_engine::EngineError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => {
            let status = if matches!(e, lifeboat_engine::EngineError::Usage { .. }) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            error(status, &e.to_string(), e.hint().as_deref())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None),
    }
}

async fn snapshots(State(state): State<AppState>, Query(q): Query<Filter>) -> Response {
    let engine = state.engine();
    blocking_json(move || engine.snapshots(q.asset.as_deref())).await
}

async fn runs(State(state): State<AppState>, Query(q): Query<Filter>) -> Response {
    let engine = state.engine();
    blocking_json(move || engine.runs(q.asset.as_deref(), q.limit.unwrap_or(100))).await
}

async fn events(State(state): State<AppState>, Query(q): Query<Filter>) -> Response {
    let engine = state.engine();
    blocking_json(move || engine.events(q.limit.unwrap_or(100))).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    #[serde(default)]
    assets: Vec<String>,
}

async fn backup(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    // Any content type: an empty body means every asset, anything else must be the JSON.
    let req: BackupRequest = if body.iter().all(u8::is_ascii_whitespace) {
        BackupRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("read the request body: {e}"),
                    Some("send {\"assets\": [\"NAME\", ...]}, or nothing for every asset"),
                );
            }
        }
    };
    let engine = state.engine();
    let plan = engine.plan();
    for a in &req.assets {
        if plan.asset(a).is_none() {
            let known: Vec<&str> = plan.assets.iter().map(|x| x.name.as_str()).collect();
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown asset {a}"),
                Some(&format!("the plan has: {}", known.join(", "))),
            );
        }
    }
    let assets = if req.assets.is_empty() {
        plan.assets.iter().map(|a| a.name.clone()).collect()
    } else {
        req.assets
    };
    let job = JobKind::Backup { assets };
    match jobs::start_now(&state, job.clone(), "api") {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "started": job }))).into_response(),
        Err(Refused::Busy(why)) => error(
            StatusCode::CONFLICT,
            &why,
            Some("try again when the running job has ended (see /api/status)"),
        ),
        Err(Refused::Stopping) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping",
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn state(token: Option<&str>, everywhere: bool) -> AppState {
        let plan = lifeboat_plan::parse(
            "version = 1\n[plan]\nname = \"t\"\n[assets.web]\ntype = \"files\"\npaths = [\"/srv\"]\n",
            Path::new("/nonexistent/lifeboat.toml"),
        )
        .unwrap();
        AppState::new(
            "/nonexistent/lifeboat.toml".into(),
            plan,
            token.map(|t| lifeboat_core::Secret::new(t.to_owned())),
            everywhere,
        )
    }

    async fn call(
        app: Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn post_needs_the_token_and_reads_are_open_on_loopback() {
        let app = router(state(Some("s3cret-token"), false));
        assert_eq!(
            call(app.clone(), "GET", "/healthz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app.clone(), "GET", "/metrics", None).await.0,
            StatusCode::OK
        );
        let (s, body) = call(app.clone(), "POST", "/api/backup", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, body2) = call(app.clone(), "POST", "/api/backup", Some("wrong")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(!body.contains("s3cret") && !body2.contains("s3cret"));
        assert_eq!(
            call(app, "GET", "/nope", None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_backup_request_names_known_assets_in_json() {
        let app = router(state(Some("tok"), false));
        let post = |body: &'static str| {
            Request::builder()
                .method("POST")
                .uri("/api/backup")
                .header("authorization", "Bearer tok")
                .body(Body::from(body))
                .unwrap()
        };
        let resp = app.clone().oneshot(post("{bad")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = app.oneshot(post(r#"{"assets": ["nope"]}"#)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("the plan has: web"));
    }

    #[tokio::test]
    async fn without_a_token_nothing_can_be_started() {
        let app = router(state(None, false));
        assert_eq!(
            call(app, "POST", "/api/backup", Some("x")).await.0,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn off_loopback_every_route_but_healthz_needs_the_token() {
        let app = router(state(Some("tok"), true));
        assert_eq!(
            call(app.clone(), "GET", "/healthz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app.clone(), "GET", "/metrics", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(app, "GET", "/metrics", Some("tok")).await.0,
            StatusCode::OK
        );
    }
}
