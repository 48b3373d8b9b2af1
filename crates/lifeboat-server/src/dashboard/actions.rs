//! What the dashboard does rather than shows: logging in and out, starting a backup, a
//! drill or a runbook. Every action needs an operator's session and its CSRF token, and
//! leaves a line in the audit log under the user's name, refused or not.

use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use super::{access, access::Who, layout::error_page, layout::page, plan_name};
use crate::{
    jobs::{self, JobKind, Refused},
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn login_form(state: &AppState, failed: bool) -> Response {
    let body = html! {
        div.login.card {
            h1 { "Log in" }
            @if failed { div.flash.error role="alert" { "That name and password do not match." } }
            form method="post" action="/login" {
                label for="name" { "Name" }
                input type="text" id="name" name="name" autocomplete="username";
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password";
                p.muted { "Or leave the name empty and give the daemon's API token." }
                button type="submit" { "Log in" }
            }
        }
    };
    let mut resp = page("Log in", "", None, &plan_name(state), &body);
    if failed {
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
    }
    resp
}

pub(super) async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, false)
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let st = state.clone();
    let name = form.name.clone();
    let checked =
        tokio::task::spawn_blocking(move || access::check_login(&st, &name, &form.password))
            .await
            .ok()
            .flatten();
    let engine = state.engine();
    let Some((user, role)) = checked else {
        let shown = if form.name.trim().is_empty() {
            "token"
        } else {
            form.name.trim()
        };
        engine.audit_as(shown, "dashboard login", "refused", None);
        // Slows guessing down; the page says nothing about which part was wrong.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return login_form(&state, true);
    };
    engine.audit_as(&user, "dashboard login", "ok", Some(role.as_str()));
    let id = state.0.sessions.open(&user, role);
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&access::cookie(&id, access::behind_tls(&headers))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionForm {
    csrf: Option<String>,
    asset: Option<String>,
    confirm: Option<String>,
}

/// The page that refuses `who` the action `what` (written to the audit log), or `None`
/// for an operator whose form carries the session's CSRF token.
fn refused(state: &AppState, who: &Who, form: &ActionForm, what: &str) -> Option<Response> {
    let why = if who.csrf.is_none() {
        (
            "starting jobs needs a login".to_owned(),
            "log in as an operator",
        )
    } else if !who.operator() {
        (
            format!("{} may read but not start jobs", who.user),
            "log in as an operator",
        )
    } else if !access::csrf_ok(who, form.csrf.as_deref()) {
        (
            "the form's CSRF token is missing or wrong".to_owned(),
            "reload the page and try again",
        )
    } else {
        return None;
    };
    state.engine().audit_as(
        &who.user,
        &format!("dashboard: {what}"),
        "refused",
        Some(&why.0),
    );
    Some(error_page(
        StatusCode::FORBIDDEN,
        Some(who),
        &plan_name(state),
        &why.0,
        Some(why.1),
    ))
}

fn start(state: &AppState, who: &Who, job: JobKind, what: &str, back: &str) -> Response {
    let engine = state.engine();
    match jobs::start_now(state, job, &format!("dashboard:{}", who.user)) {
        Ok(()) => {
            engine.audit_as(&who.user, &format!("dashboard: {what}"), "started", None);
            Redirect::to(back).into_response()
        }
        Err(Refused::Busy(why)) => {
            engine.audit_as(
                &who.user,
                &format!("dashboard: {what}"),
                "refused",
                Some(&why),
            );
            error_page(
                StatusCode::CONFLICT,
                Some(who),
                &plan_name(state),
                &why,
                Some("try again when the running job has ended"),
            )
        }
        Err(Refused::Stopping) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(who),
            &plan_name(state),
            "the daemon is stopping",
            None,
        ),
    }
}

/// The page a request gets instead of what it asked for (boxed: a response is large).
type Refusal = Box<Response>;

/// The asset a form names, which the plan must have; `None` for all of them.
fn form_asset(state: &AppState, who: &Who, form: &ActionForm) -> Result<Option<String>, Refusal> {
    match form.asset.as_deref().filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) if state.engine().plan().asset(a).is_some() => Ok(Some(a.to_owned())),
        Some(a) => Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            Some(who),
            &plan_name(state),
            &format!("the plan has no asset {a}"),
            None,
        ))),
    }
}

pub(super) async fn action_backup(
    State(state): State<AppState>,
    who: Who,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(r) = refused(&state, &who, &form, "backup") {
        return r;
    }
    let asset = match form_asset(&state, &who, &form) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let (assets, back) = match asset {
        Some(a) => (vec![a.clone()], format!("/assets/{a}")),
        None => (
            state
                .engine()
                .plan()
                .assets
                .iter()
                .map(|a| a.name.clone())
                .collect(),
            "/".to_owned(),
        ),
    };
    let what = format!("backup {}", assets.join(" "));
    start(&state, &who, JobKind::Backup { assets }, &what, &back)
}

pub(super) async fn action_drill(
    State(state): State<AppState>,
    who: Who,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(r) = refused(&state, &who, &form, "drill") {
        return r;
    }
    let asset = match form_asset(&state, &who, &form) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let assets: Vec<String> = asset.into_iter().collect();
    let what = if assets.is_empty() {
        "drill".to_owned()
    } else {
        format!("drill {}", assets.join(" "))
    };
    start(&state, &who, JobKind::Drill { assets }, &what, "/drills")
}

pub(super) async fn run_runbook(
    State(state): State<AppState>,
    who: Who,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let what = format!("recover {name} --yes");
    if let Some(r) = refused(&state, &who, &form, &what) {
        return r;
    }
    if state.engine().plan().scenario(&name).is_none() {
        return error_page(
            StatusCode::NOT_FOUND,
            Some(&who),
            &plan_name(&state),
            &format!("the plan has no scenario {name}"),
            None,
        );
    }
    if form.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
        state.engine().audit_as(
            &who.user,
            &format!("dashboard: {what}"),
            "refused",
            Some("not confirmed"),
        );
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&who),
            &plan_name(&state),
            &format!("running {name} against the live targets was not confirmed"),
            Some(&format!(
                "type the scenario's name, {name}, into the box to confirm"
            )),
        );
    }
    start(&state, &who, JobKind::Runbook { name }, &what, "/runbooks")
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let (Some(id), Some(who)) = (access::session_id(&headers), access::who(&state, &headers))
        && access::csrf_ok(&who, form.csrf.as_deref())
    {
        state.0.sessions.close(&id);
        state
            .engine()
            .audit_as(&who.user, "dashboard logout", "ok", None);
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&access::expired_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
