//! `[notify.NAME]`: who hears about failures and breaches.

use serde::Deserialize;

use crate::{
    document::At, error::PlanError, key_path::KeyPath, resolve::Resolver,
    secret_source::SecretSource,
};

/// `[notify.NAME]`: the union of every notifier type's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NotifyConfig {
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<String>,
    pub url_command: Option<String>,
    pub routing_key_env: Option<String>,
    pub routing_key_file: Option<String>,
    pub routing_key_command: Option<String>,
    pub smtp: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password_command: Option<String>,
    pub ca_file: Option<String>,
    pub on: Option<Vec<NotifyEvent>>,
}

impl NotifyConfig {
    /// Keys a notifier of `kind` accepts. Only a generic webhook may have its URL in clear.
    pub(crate) const fn kind_keys(kind: NotifyKind) -> &'static [&'static str] {
        match kind {
            NotifyKind::Slack | NotifyKind::Discord | NotifyKind::Healthchecks => {
                &["type", "url-env", "url-file", "url-command", "on"]
            }
            NotifyKind::Webhook => &["type", "url", "url-env", "url-file", "url-command", "on"],
            NotifyKind::Pagerduty => &[
                "type",
                "routing-key-env",
                "routing-key-file",
                "routing-key-command",
                "url-env",
                "url-file",
                "url-command",
                "on",
            ],
            NotifyKind::Email => &[
                "type",
                "smtp",
                "from",
                "to",
                "username",
                "password-env",
                "password-file",
                "password-command",
                "ca-file",
                "on",
            ],
        }
    }
}

/// A notifier with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNotify {
    /// The key of `[notify.NAME]`; what a scenario's `target` names.
    pub name: String,
    /// `type = "..."`
    pub kind: NotifyKind,
    /// Where the URL comes from (`url-env`, `url-file`, `url-command`). Required for Slack
    /// and Healthchecks, optional for PagerDuty (its events endpoint), and for webhooks one
    /// of this or `plain_url`.
    pub url: Option<SecretSource>,
    /// A webhook's URL written in the plan: only webhooks may, the others' URLs are credentials.
    pub plain_url: Option<String>,
    /// PagerDuty's integration key.
    pub routing_key: Option<SecretSource>,
    /// The events sent; `[failure, rpo-breach]` unless given. Deduplicated, in file order.
    pub on: Vec<NotifyEvent>,
    /// An `email` notifier's server, sender and recipients.
    pub email: Option<EmailSettings>,
}

/// Where an `email` notifier sends, and how it logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// `smtp = "host:port"`. Port 465 speaks TLS from the start; any other must offer
    /// STARTTLS, or nothing is sent.
    pub host: String,
    pub port: u16,
    pub from: String,
    /// At least one.
    pub to: Vec<String>,
    /// The login, with the password from `password-env`, `-file` or `-command`.
    pub login: Option<(String, SecretSource)>,
    /// A certificate authority (PEM) trusted besides the system's, for a private server.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The service a notifier posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    /// A Slack incoming webhook.
    Slack,
    /// A Discord channel webhook: Slack's message, in Discord's field.
    Discord,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// A generic JSON POST.
    Webhook,
    /// A Healthchecks.io (or compatible) ping URL.
    Healthchecks,
    /// E-mail over SMTP with TLS.
    Email,
}

impl NotifyKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 6] = [
        Self::Slack,
        Self::Discord,
        Self::Pagerduty,
        Self::Webhook,
        Self::Healthchecks,
        Self::Email,
    ];

    /// The name used in `type = "..."`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Pagerduty => "pagerduty",
            Self::Webhook => "webhook",
            Self::Healthchecks => "healthchecks",
            Self::Email => "email",
        }
    }
}

/// Something worth telling a human about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A backup, copy or verify job failed.
    Failure,
    /// A job succeeded (for dead man's switches such as Healthchecks).
    Success,
    /// An asset's newest snapshot became older than its RPO.
    RpoBreach,
    /// A breached asset has a fresh snapshot again.
    RpoRecovered,
    /// A backup is much smaller or larger than the ones before it.
    SizeAnomaly,
    /// A restore drill failed or missed its RTO.
    DrillFailed,
    /// A backup did not start: too little free space where it writes.
    DiskSpace,
}

impl NotifyEvent {
    /// The name used in `on = [...]`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Success => "success",
            Self::RpoBreach => "rpo-breach",
            Self::RpoRecovered => "rpo-recovered",
            Self::SizeAnomaly => "size-anomaly",
            Self::DrillFailed => "drill-failed",
            Self::DiskSpace => "disk-space",
        }
    }
}

pub(crate) fn resolve(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    name: &str,
    c: &NotifyConfig,
) -> Result<ResolvedNotify, PlanError> {
    r.name(base, At::Key, name)?;
    let url = r.secret_source(
        base,
        "url",
        c.url_env.as_ref(),
        c.url_file.as_ref(),
        c.url_command.as_ref(),
    )?;
    let routing_key = r.secret_source(
        base,
        "routing-key",
        c.routing_key_env.as_ref(),
        c.routing_key_file.as_ref(),
        c.routing_key_command.as_ref(),
    )?;
    let plain_url = c.url.clone();
    if url.is_some() && plain_url.is_some() {
        return Err(r
            .doc
            .key_error(
                &base.key("url"),
                "url and url-env/url-file/url-command both given",
            )
            .with_hint("keep one"));
    }
    if let Some(u) = &plain_url {
        let ok = url::Url::parse(u).is_ok_and(|x| matches!(x.scheme(), "http" | "https"));
        if !ok {
            return Err(r
                .error(
                    &base.key("url"),
                    "webhook url must be an http:// or https:// URL",
                )
                .with_hint("e.g. url = \"https://hooks.example.com/lifeboat\""));
        }
    }
    match c.kind {
        NotifyKind::Slack | NotifyKind::Discord | NotifyKind::Healthchecks if url.is_none() => {
            let env = match c.kind {
                NotifyKind::Slack => "SLACK_WEBHOOK_URL",
                NotifyKind::Discord => "DISCORD_WEBHOOK_URL",
                _ => "HEALTHCHECKS_URL",
            };
            return Err(r
                .error(&base.key("url-env"), "missing key")
                .with_hint(format!("add url-env = \"{env}\", url-file or url-command")));
        }
        NotifyKind::Webhook if url.is_none() && plain_url.is_none() => {
            return Err(r
                .error(&base.key("url"), "missing key")
                .with_hint("add url = \"https://...\", or url-env, url-file or url-command"));
        }
        NotifyKind::Pagerduty if routing_key.is_none() => {
            return Err(r
                .error(&base.key("routing-key-env"), "missing key")
                .with_hint("add routing-key-env = \"PAGERDUTY_ROUTING_KEY\", routing-key-file or routing-key-command"));
        }
        _ => {}
    }
    let email = match c.kind {
        NotifyKind::Email => Some(email(r, base, c)?),
        _ => None,
    };
    let on = match &c.on {
        None => vec![NotifyEvent::Failure, NotifyEvent::RpoBreach],
        Some(events) if events.is_empty() => {
            return Err(r.error(&base.key("on"), "lists no event").with_hint(
                "leave on out for [\"failure\", \"rpo-breach\"], or remove the notifier",
            ));
        }
        Some(events) => {
            let mut on = Vec::with_capacity(events.len());
            for e in events {
                if !on.contains(e) {
                    on.push(*e);
                }
            }
            on
        }
    };
    Ok(ResolvedNotify {
        name: name.to_owned(),
        kind: c.kind,
        url,
        plain_url,
        routing_key,
        on,
        email,
    })
}

fn email(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    c: &NotifyConfig,
) -> Result<EmailSettings, PlanError> {
    let Some(smtp) = &c.smtp else {
        return Err(r
            .error(&base.key("smtp"), "missing key")
            .with_hint("smtp = \"smtp.example.com:587\" (STARTTLS) or \"...:465\" (TLS)"));
    };
    let bad_smtp = || {
        r.error(&base.key("smtp"), "not a host:port")
            .with_hint("e.g. smtp = \"smtp.example.com:587\"")
    };
    let (host, port) = smtp.rsplit_once(':').ok_or_else(bad_smtp)?;
    let port: u16 = port.parse().map_err(|_| bad_smtp())?;
    if host.is_empty() {
        return Err(bad_smtp());
    }
    let address = |path: KeyPath, value: &str| -> Result<String, PlanError> {
        let v = r.non_empty(&path, value)?;
        // The mailbox itself is checked when the message is built; catch the obvious here.
        if v.contains('@') {
            Ok(v.to_owned())
        } else {
            Err(r
                .error(&path, format!("{v:?} is not an e-mail address"))
                .with_hint("write ops@example.com, or \"Ops <ops@example.com>\""))
        }
    };
    let Some(from) = &c.from else {
        return Err(r
            .error(&base.key("from"), "missing key")
            .with_hint("from = \"lifeboat@example.com\""));
    };
    let from = address(base.key("from"), from)?;
    let to = match &c.to {
        Some(list) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, a)| address(base.key("to").index(i), a))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(r
                .error(&base.key("to"), "no recipient")
                .with_hint("to = [\"ops@example.com\"]"));
        }
    };
    let password = r.secret_source(
        base,
        "password",
        c.password_env.as_ref(),
        c.password_file.as_ref(),
        c.password_command.as_ref(),
    )?;
    let login = match (&c.username, password) {
        (Some(u), Some(p)) => Some((r.non_empty(&base.key("username"), u)?.to_owned(), p)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(r
                .error(&base.key("password-env"), "missing key")
                .with_hint("a username needs password-env, password-file or password-command"));
        }
        (None, Some(_)) => {
            return Err(r
                .error(&base.key("username"), "missing key")
                .with_hint("the password needs the username it belongs to"));
        }
    };
    Ok(EmailSettings {
        host: host.to_owned(),
        port,
        from,
        to,
        login,
        ca_file: c.ca_file.as_ref().map(|f| r.path(f)),
    })
}
