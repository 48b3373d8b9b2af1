//! Notifications: `[notify.*]` of the plan, delivered over HTTP.
//!
//! One [`Event`] goes to every notifier whose `on` list names its kind: a Slack incoming
//! webhook, PagerDuty's Events API v2 (trigger, and resolve with the same dedup key per
//! asset), a generic JSON webhook, or Healthchecks pings (`/start`, success, `/fail`).
//!
//! Contract: sending never fails a job. Each delivery is tried up to [`ATTEMPTS`] times with a
//! growing pause on connection errors, time-outs, 429 and 5xx; what still fails is logged as a
//! warning and returned as a [`Delivery`]. URLs and routing keys are read from their secret
//! source at each send (a rotated file is picked up) and never appear in a message: errors
//! carry the notifier's name, the HTTP status or the transport error without its URL, and any
//! secret a server echoes back is masked. Calls block; async callers use `spawn_blocking`.

use std::time::Duration;

use jiff::Timestamp;
use lifeboat_plan::{NotifyEvent, NotifyKind, ResolvedNotify, ResolvedPlan};
use serde::Serialize;

use crate::secrets::read_secret;

/// Tries per delivery.
pub const ATTEMPTS: u32 = 3;
/// The pause after the first failed try; doubled after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Per request, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// PagerDuty's Events API v2, unless the notifier's `url-env`/`url-file`/`url-command` names another.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Something that happened, told to the notifiers whose `on` names its kind.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened, as named in `on = [...]`.
    #[serde(serialize_with = "ser_kind")]
    pub kind: NotifyEvent,
    /// The plan's name.
    pub plan: String,
    /// The job that raised it: `backup`, `verify`, `drill`, `copy`, `forget`, `prune`, `watchdog`.
    pub job: String,
    /// The asset concerned; `None` for the plan as a whole.
    pub asset: Option<String>,
    /// One line for a human, naming what it is about.
    pub summary: String,
    /// The host the event was raised on.
    pub host: String,
    pub time: Timestamp,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with passes a reference"
)]
fn ser_kind<S: serde::Serializer>(k: &NotifyEvent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

impl Event {
    /// An event raised now on this host.
    #[must_use]
    pub fn new(
        kind: NotifyEvent,
        plan: &str,
        job: &str,
        asset: Option<&str>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            plan: plan.to_owned(),
            job: job.to_owned(),
            asset: asset.map(str::to_owned),
            summary: summary.into(),
            host: crate::host::host_name(),
            time: Timestamp::now(),
        }
    }

    /// The PagerDuty dedup key: one incident per asset (or per plan), so that the
    /// `rpo-recovered` or `success` of an asset resolves what its failure or breach opened.
    #[must_use]
    pub fn dedup_key(&self) -> String {
        match &self.asset {
            Some(a) => format!("lifeboat/{}/{a}", self.plan),
            None => format!("lifeboat/{}", self.plan),
        }
    }

    /// Good news: resolves an incident, pings Healthchecks' success URL.
    const fn is_good(&self) -> bool {
        matches!(self.kind, NotifyEvent::Success | NotifyEvent::RpoRecovered)
    }

    fn text(&self) -> String {
        let mark = if self.is_good() { "ok" } else { "ALERT" };
        format!(
            "[{mark}] lifeboat {}: {} ({} on {})",
            self.plan,
            self.summary,
            self.kind.as_str(),
            self.host
        )
    }
}

/// The outcome of one delivery to one notifier.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub notifier: String,
    pub ok: bool,
    pub attempts: u32,
    /// Why it failed; never holds the URL or a key.
    pub error: Option<String>,
}

/// A notification that could not be delivered by [`Notifiers::send_message`].
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no notifier {name} in the plan")]
    Unknown { name: String, known: Vec<String> },
    #[error("notify {name}: {reason}")]
    Failed { name: String, reason: String },
}

impl NotifyError {
    /// One line the user can act on.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unknown { known, .. } if known.is_empty() => {
                Some("add a [notify.NAME] table to the plan".to_owned())
            }
            Self::Unknown { known, .. } => Some(format!("the plan has: {}", known.join(", "))),
            Self::Failed { .. } => Some(
                "check the notifier's URL source (url-env, url-file, url-command) and that the service is reachable"
                    .to_owned(),
            ),
        }
    }
}

/// The plan's notifiers, ready to send.
#[derive(Debug, Clone)]
pub struct Notifiers {
    plan: String,
    list: Vec<ResolvedNotify>,
    client: Option<reqwest::blocking::Client>,
    backoff: Duration,
}

/// What one HTTP delivery sends.
struct Request {
    url: String,
    body: Option<serde_json::Value>,
    /// Values to mask in anything a server says back.
    secrets: Vec<String>,
}

/// What one delivery sends: an HTTP request, or an e-mail.
enum Outgoing {
    Http(Request),
    Mail { subject: String, body: String },
}

impl From<Request> for Outgoing {
    fn from(r: Request) -> Self {
        Self::Http(r)
    }
}

/// An e-mail's subject and text for `text`, one line naming what happened.
fn mail(subject: String, text: &str) -> Outgoing {
    Outgoing::Mail {
        subject,
        body: format!(
            "{text}\n\nSent by Lifeboat from {}.\n",
            crate::host::host_name()
        ),
    }
}

impl Notifiers {
    /// The notifiers of `plan`. Nothing is read or sent yet.
    #[must_use]
    pub fn from_plan(plan: &ResolvedPlan) -> Self {
        let client = if plan.notify.is_empty() {
            None
        } else {
            reqwest::blocking::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| tracing::warn!("notifications disabled: {}", e.without_url()))
                .ok()
        };
        Self {
            plan: plan.name.clone(),
            list: plan.notify.clone(),
            client,
            backoff: FIRST_BACKOFF,
        }
    }

    /// No notifier in the plan.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends `event` to every notifier whose `on` names it. Never fails: a delivery that
    /// fails after its retries is logged and reported in the returned list.
    pub fn send(&self, event: &Event) -> Vec<Delivery> {
        self.list
            .iter()
            .filter(|n| n.on.contains(&event.kind))
            .map(|n| {
                self.deliver(n, || match n.kind {
                    NotifyKind::Email => Ok(mail(event.text(), &event_mail_body(event))),
                    _ => request_for(n, event).map(Outgoing::from),
                })
            })
            .collect()
    }

    /// Tells Healthchecks notifiers that listen for `success` or `failure` that `job` has
    /// started (their `/start` ping, which lets Healthchecks time the run). Others hear nothing.
    pub fn started(&self, job: &str, asset: Option<&str>) -> Vec<Delivery> {
        tracing::debug!(job, asset, "job started");
        self.list
            .iter()
            .filter(|n| {
                n.kind == NotifyKind::Healthchecks
                    && (n.on.contains(&NotifyEvent::Success)
                        || n.on.contains(&NotifyEvent::Failure))
            })
            .map(|n| {
                self.deliver(n, || {
                    let url = secret_url(n)?;
                    Ok(Outgoing::Http(Request {
                        url: ping_url(&url, "start"),
                        body: None,
                        secrets: vec![url],
                    }))
                })
            })
            .collect()
    }

    /// Sends free text to the notifier called `name`, whatever its `on` list (a runbook's
    /// `notify` step). Unlike [`Self::send`] the caller learns of a failure.
    ///
    /// # Errors
    /// No such notifier, or every try failed.
    pub fn send_message(&self, name: &str, text: &str) -> Result<Delivery, NotifyError> {
        let Some(n) = self.list.iter().find(|n| n.name == name) else {
            return Err(NotifyError::Unknown {
                name: name.to_owned(),
                known: self.list.iter().map(|n| n.name.clone()).collect(),
            });
        };
        let delivery = self.deliver(n, || match n.kind {
            NotifyKind::Email => Ok(mail(
                format!(
                    "lifeboat {}: {}",
                    self.plan,
                    text.lines().next().unwrap_or("")
                ),
                text,
            )),
            _ => {
                message_request(n, &self.plan, text, &crate::host::host_name()).map(Outgoing::from)
            }
        });
        if delivery.ok {
            Ok(delivery)
        } else {
            Err(NotifyError::Failed {
                name: name.to_owned(),
                reason: delivery.error.unwrap_or_default(),
            })
        }
    }

    fn deliver(
        &self,
        n: &ResolvedNotify,
        build: impl FnOnce() -> Result<Outgoing, String>,
    ) -> Delivery {
        let mut attempts = 0;
        let result = build().and_then(|out| {
            let mut pause = self.backoff;
            loop {
                attempts += 1;
                let sent = match &out {
                    Outgoing::Http(req) => match &self.client {
                        Some(client) => post(client, req),
                        None => return Err("no HTTP client".to_owned()),
                    },
                    Outgoing::Mail { subject, body } => match &n.email {
                        Some(settings) => crate::mail::send(settings, subject, body),
                        None => return Err("no SMTP settings".to_owned()),
                    },
                };
                match sent {
                    Ok(()) => return Ok(()),
                    Err((reason, retry)) if retry && attempts < ATTEMPTS => {
                        tracing::debug!(notifier = %n.name, attempt = attempts, "{reason}; retrying");
                        std::thread::sleep(pause);
                        pause *= 2;
                    }
                    Err((reason, _)) => return Err(reason),
                }
            }
        });
        match result {
            Ok(()) => {
                tracing::debug!(notifier = %n.name, "notified");
                Delivery {
                    notifier: n.name.clone(),
                    ok: true,
                    attempts,
                    error: None,
                }
            }
            Err(reason) => {
                tracing::warn!("notify {} ({}): {reason}", n.name, n.kind.as_str());
                Delivery {
                    notifier: n.name.clone(),
                    ok: false,
                    attempts,
                    error: Some(reason),
                }
            }
        }
    }
}

/// One POST; the error says whether trying again may help.
fn post(client: &reqwest::blocking::Client, req: &Request) -> Result<(), (String, bool)> {
    let builder = client.post(&req.url);
    let builder = match &req.body {
        Some(body) => builder.json(body),
        None => builder,
    };
    match builder.send() {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            let mut said: String = body.trim().chars().take(200).collect();
            for s in &req.secrets {
                if !s.is_empty() {
                    said = said.replace(s.as_str(), "***");
                }
            }
            let retry = status.is_server_error() || status.as_u16() == 429;
            let reason = if said.is_empty() {
                format!("the server answered {status}")
            } else {
                format!("the server answered {status}: {said}")
            };
            Err((reason, retry))
        }
        Err(e) => Err((format!("send: {}", e.without_url()), true)),
    }
}

fn secret_url(n: &ResolvedNotify) -> Result<String, String> {
    match (&n.url, &n.plain_url) {
        (Some(source), _) => read_secret(source)
            .map(|s| s.expose().to_owned())
            .map_err(|e| format!("read its URL: {e}")),
        (None, Some(url)) => Ok(url.clone()),
        (None, None) if n.kind == NotifyKind::Pagerduty => Ok(PAGERDUTY_EVENTS_URL.to_owned()),
        (None, None) => Err("no URL".to_owned()),
    }
}

/// A chat message: one text, under the field the service reads (Discord takes 2000
/// characters at most).
fn chat(kind: NotifyKind, text: &str) -> serde_json::Value {
    match kind {
        NotifyKind::Discord => {
            serde_json::json!({ "content": text.chars().take(2000).collect::<String>() })
        }
        _ => serde_json::json!({ "text": text }),
    }
}

/// `base` with `/suffix` appended to its path (Healthchecks' `/start` and `/fail`).
fn ping_url(base: &str, suffix: &str) -> String {
    match base.split_once('?') {
        Some((path, query)) => format!("{}/{suffix}?{query}", path.trim_end_matches('/')),
        None => format!("{}/{suffix}", base.trim_end_matches('/')),
    }
}

/// The text of an event's e-mail: the line chat services get, then each field.
fn event_mail_body(event: &Event) -> String {
    format!(
        "{}\n\nevent: {}\nplan: {}\njob: {}\nasset: {}\nhost: {}\ntime: {}",
        event.summary,
        event.kind.as_str(),
        event.plan,
        event.job,
        event.asset.as_deref().unwrap_or("-"),
        event.host,
        event.time
    )
}

fn request_for(n: &ResolvedNotify, event: &Event) -> Result<Request, String> {
    let url = secret_url(n)?;
    let mut secrets = vec![url.clone()];
    let (url, body) = match n.kind {
        NotifyKind::Slack | NotifyKind::Discord => (url, Some(chat(n.kind, &event.text()))),
        NotifyKind::Webhook => (
            url,
            Some(serde_json::to_value(event).map_err(|e| e.to_string())?),
        ),
        NotifyKind::Healthchecks => {
            let url = if event.is_good() {
                url
            } else {
                ping_url(&url, "fail")
            };
            (url, None)
        }
        NotifyKind::Pagerduty => {
            let key = routing_key(n)?;
            secrets.push(key.clone());
            (url, Some(pagerduty_body(&key, event)))
        }
        // Sent as mail (`Notifiers::send`), never as a request.
        NotifyKind::Email => return Err("an e-mail notifier has no URL".to_owned()),
    };
    // Healthchecks takes a text body as the ping's log; JSON it is not, so send none there.
    Ok(Request { url, body, secrets })
}

fn routing_key(n: &ResolvedNotify) -> Result<String, String> {
    let source = n.routing_key.as_ref().ok_or("no routing key")?;
    read_secret(source)
        .map(|s| s.expose().to_owned())
        .map_err(|e| format!("read its routing key: {e}"))
}

/// An Events API v2 body: `trigger` for trouble, `resolve` for good news, one dedup key per asset.
fn pagerduty_body(key: &str, event: &Event) -> serde_json::Value {
    let dedup = event.dedup_key();
    if event.is_good() {
        return serde_json::json!({
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": dedup,
        });
    }
    let severity = match event.kind {
        NotifyEvent::RpoBreach => "critical",
        NotifyEvent::SizeAnomaly => "warning",
        _ => "error",
    };
    let summary: String = format!("lifeboat {}: {}", event.plan, event.summary)
        .chars()
        .take(1024)
        .collect();
    serde_json::json!({
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "client": "Lifeboat",
        "payload": {
            "summary": summary,
            "source": event.host,
            "severity": severity,
            "timestamp": event.time.to_string(),
            "component": event.asset,
            "group": event.plan,
            "class": event.kind.as_str(),
            "custom_details": { "job": event.job },
        },
    })
}

/// A free-text message in each service's form (PagerDuty: an info-level trigger under the
/// plan's key; Healthchecks: a success ping, the only thing it records).
fn message_request(
    n: &ResolvedNotify,
    plan: &str,
    text: &str,
    host: &str,
) -> Result<Request, String> {
    let url = secret_url(n)?;
    let mut secrets = vec![url.clone()];
    let body = match n.kind {
        NotifyKind::Slack | NotifyKind::Discord => {
            Some(chat(n.kind, &format!("lifeboat {plan}: {text}")))
        }
        NotifyKind::Webhook => Some(serde_json::json!({
            "kind": "message",
            "plan": plan,
            "host": host,
            "text": text,
            "time": Timestamp::now().to_string(),
        })),
        NotifyKind::Healthchecks => None,
        NotifyKind::Pagerduty => {
            let key = routing_key(n)?;
            secrets.push(key.clone());
            Some(serde_json::json!({
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": format!("lifeboat/{plan}/message"),
                "client": "Lifeboat",
                "payload": {
                    "summary": format!("lifeboat {plan}: {text}").chars().take(1024).collect::<String>(),
                    "source": host,
                    "severity": "info",
                    "group": plan,
                    "class": "message",
                },
            }))
        }
        // Sent as mail (`Notifiers::send_message`), never as a request.
        NotifyKind::Email => return Err("an e-mail notifier has no URL".to_owned()),
    };
    Ok(Request { url, body, secrets })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_keep_their_query() {
        assert_eq!(
            ping_url("https://hc.example/ping/abc", "fail"),
            "https://hc.example/ping/abc/fail"
        );
        assert_eq!(
            ping_url("https://hc.example/ping/abc/?create=1", "start"),
            "https://hc.example/ping/abc/start?create=1"
        );
    }

    #[test]
    fn pagerduty_resolves_what_it_triggered() {
        let breach = Event::new(NotifyEvent::RpoBreach, "p", "watchdog", Some("db"), "late");
        let recovered = Event::new(NotifyEvent::RpoRecovered, "p", "watchdog", Some("db"), "ok");
        let t = pagerduty_body("k", &breach);
        let r = pagerduty_body("k", &recovered);
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["payload"]["severity"], "critical");
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(t["dedup_key"], r["dedup_key"]);
        assert_eq!(t["dedup_key"], "lifeboat/p/db");
    }
}
