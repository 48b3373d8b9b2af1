//! The page around every dashboard page, and the small pieces pages share.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::access::Who;

/// The top-level sections, in the navigation's order: (path, label).
const SECTIONS: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/drills", "Drills"),
    ("/runbooks", "Runbooks"),
    ("/pitr", "PITR"),
    ("/activity", "Activity"),
];

/// A whole page: `title`, the section it belongs to (for `aria-current`), and its body.
pub fn page(title: &str, section: &str, who: Option<&Who>, plan: &str, body: &Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Lifeboat · " (plan) }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/live.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "Lifeboat · " (plan) }
                    nav aria-label="sections" {
                        @for (path, label) in SECTIONS {
                            @if *path == section {
                                a href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                    @if let Some(w) = who {
                        div.who {
                            span { (w.user) " (" (w.role.as_str()) ")" }
                            @if let Some(csrf) = &w.csrf {
                                form method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Log out" }
                                }
                            } @else {
                                a href="/login" { "Log in" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    html_response(markup.into_string())
}

/// Only this daemon's own stylesheet and script, no frames around its pages.
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

fn html_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        body,
    )
        .into_response()
}

/// A page that says what went wrong, with a hint when there is one.
pub fn error_page(
    status: StatusCode,
    who: Option<&Who>,
    plan: &str,
    message: &str,
    hint: Option<&str>,
) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        div.flash.error role="alert" {
            p { (message) }
            @if let Some(h) = hint { p.muted { (h) } }
        }
        p { a href="/" { "Back to the overview" } }
    };
    let mut resp = page("Error", "", who, plan, &body);
    *resp.status_mut() = status;
    resp
}

/// An HTML fragment (the parts `live.js` refreshes).
pub fn fragment(markup: &Markup) -> Response {
    html_response(markup.clone().into_string())
}

/// A time as the pages show it: UTC to the second.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn secs(s: f64) -> String {
    lifeboat_engine::human_secs(s)
}

pub fn bytes(n: u64) -> String {
    lifeboat_engine::human_bytes(n)
}

/// Green within 80% of the target, amber up to it, red beyond.
pub fn rag(value: f64, target: f64) -> &'static str {
    if value > target {
        "red"
    } else if value > target * 0.8 {
        "amber"
    } else {
        "green"
    }
}

/// A coloured badge with its meaning in words (never colour alone).
pub fn badge(colour: &str, text: &str) -> Markup {
    html! { span class={ "badge " (colour) } { (text) } }
}

/// The hidden CSRF field of an action's form.
pub fn csrf_field(who: &Who) -> Markup {
    html! {
        @if let Some(c) = &who.csrf { input type="hidden" name="csrf" value=(c); }
    }
}

/// `path` with `value` percent-encoded as a query value.
pub fn query(path: &str, key: &str, value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{path}?{key}={s}")
}
