//! Refuses secrets written in clear, before anything else reads the values.
//!
//! This pass runs on the raw tree, ahead of serde, so that a secret never reaches a message
//! that might echo it (a type error, an unknown variant). It names keys, never values.

use toml::de::{DeTable, DeValue};

use crate::{
    document::{At, Document, str_value},
    error::PlanError,
    key_path::KeyPath,
};

/// Keys that can only hold a secret, wherever they appear, with the hint for each.
const SECRET_KEYS: &[(&str, &str, &str)] = &[
    (
        "password",
        "a password",
        "use password-env = \"LIFEBOAT_PASSWORD\", password-file or password-command",
    ),
    (
        "secret",
        "a secret",
        "keep it in the environment or a file and name that with a *-env or *-file key",
    ),
    (
        "token",
        "a token",
        "keep it in the environment or a file and name that with a *-env or *-file key",
    ),
    (
        "secret-access-key",
        "an S3 secret access key",
        "use secret-access-key-env = \"AWS_SECRET_ACCESS_KEY\" (or the standard AWS environment)",
    ),
    (
        "access-key-id",
        "an S3 access key id",
        "use access-key-id-env = \"AWS_ACCESS_KEY_ID\" (or the standard AWS environment)",
    ),
    (
        "routing-key",
        "a PagerDuty routing key",
        "use routing-key-env = \"PAGERDUTY_ROUTING_KEY\", routing-key-file or routing-key-command",
    ),
];

/// Query parameters that carry credentials (libpq accepts `?password=`, webhooks `?token=`).
const SECRET_QUERY_WORDS: &[&str] = &["password", "secret", "token"];

/// Fails on the first secret written in clear.
pub(crate) fn check(doc: &Document<'_>) -> Result<(), PlanError> {
    check_notify_urls(doc)?;
    walk_table(doc, doc.root.get_ref(), &KeyPath::root())
}

/// Slack, PagerDuty and Healthchecks URLs are credentials in themselves: whoever has one can
/// post to the channel or ping the check.
fn check_notify_urls(doc: &Document<'_>) -> Result<(), PlanError> {
    let Some(notify) = doc.table(&["notify"]) else {
        return Ok(());
    };
    for (name, value) in notify {
        let DeValue::Table(table) = value.get_ref() else {
            continue;
        };
        let what = match str_value(table, "type") {
            Some("slack") => "a Slack webhook URL",
            Some("pagerduty") => "a PagerDuty URL",
            Some("healthchecks") => "a Healthchecks ping URL",
            _ => continue,
        };
        if table.contains_key("url") {
            let path = KeyPath::root().key("notify").key(name.get_ref()).key("url");
            let env = match str_value(table, "type") {
                Some("slack") => "SLACK_WEBHOOK_URL",
                Some("pagerduty") => "PAGERDUTY_URL",
                _ => "HEALTHCHECKS_URL",
            };
            return Err(doc
                .key_error(
                    &path,
                    format!("{what} is a credential and may not be written in the plan file"),
                )
                .with_hint(format!("use url-env = \"{env}\", url-file or url-command")));
        }
    }
    Ok(())
}

fn walk_table(doc: &Document<'_>, table: &DeTable<'_>, path: &KeyPath) -> Result<(), PlanError> {
    for (key, value) in table {
        let key = key.get_ref().as_ref();
        let here = path.key(key);
        if let Some((_, what, hint)) = SECRET_KEYS.iter().find(|(k, _, _)| *k == key) {
            return Err(doc
                .error_at(
                    &here,
                    At::Key,
                    format!("{what} may not be written in the plan file"),
                )
                .with_hint(*hint));
        }
        walk_value(doc, value.get_ref(), &here)?;
    }
    Ok(())
}

fn walk_value(doc: &Document<'_>, value: &DeValue<'_>, path: &KeyPath) -> Result<(), PlanError> {
    match value {
        DeValue::Table(t) => walk_table(doc, t, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(doc, item.get_ref(), &path.index(i))?;
            }
            Ok(())
        }
        DeValue::String(s) => check_string(doc, s, path),
        _ => Ok(()),
    }
}

/// Any string, not just `url` keys: a DSN in a shell command is as clear as one in `url`.
fn check_string(doc: &Document<'_>, s: &str, path: &KeyPath) -> Result<(), PlanError> {
    if url_password(s).is_some() {
        return Err(doc
            .error(path, "a URL may not contain a password")
            .with_hint(
                "remove it from the URL and use password-env, password-file or password-command",
            ));
    }
    if let Some(param) = secret_query_param(s) {
        return Err(doc
            .error(path, format!("a URL may not carry a secret in its query parameter {param:?}"))
            .with_hint("keep the secret in the environment or a file and name that with a *-env or *-file key"));
    }
    Ok(())
}

/// A variable reference (`$X`, `${X}`) is not a secret in clear: the value is elsewhere.
fn is_reference(s: &str) -> bool {
    let name = s
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| s.strip_prefix('$'));
    name.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// The clear password in any `scheme://user:password@host` inside `s`.
fn url_password(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        if let Some((userinfo, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = userinfo.split_once(':')
            && !password.is_empty()
            && !is_reference(password)
        {
            return Some(password);
        }
        rest = after;
    }
    None
}

/// The name of a query parameter like `?password=x` or `&token=x` inside `s`.
fn secret_query_param(s: &str) -> Option<&str> {
    if !s.contains("://") {
        return None;
    }
    for (i, _) in s.match_indices(['?', '&']) {
        let pair = &s[i + 1..];
        let pair = pair
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .map_or(pair, |end| &pair[..end]);
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if SECRET_QUERY_WORDS.iter().any(|w| lower.contains(w))
            && !value.is_empty()
            && !is_reference(value)
        {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_passwords_in_urls() {
        assert_eq!(url_password("postgres://u:pw@h/db"), Some("pw"));
        assert_eq!(url_password("redis://:pw@h:6379"), Some("pw"));
        assert_eq!(
            url_password("pg_dump postgres://u:pw@h/db | gzip"),
            Some("pw")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("postgres://u:${PGPASS}@h/db"), None);
        assert_eq!(url_password("/var/backups"), None);
        assert_eq!(url_password("s3://b/p?endpoint=https://x:9000"), None);
    }

    #[test]
    fn finds_secret_query_parameters() {
        assert_eq!(
            secret_query_param("postgres://h/db?sslmode=require&password=x"),
            Some("password")
        );
        assert_eq!(
            secret_query_param("https://hook/x?api_token=abc"),
            Some("api_token")
        );
        assert_eq!(secret_query_param("https://hook/x?token=${TOKEN}"), None);
        assert_eq!(
            secret_query_param("s3://b/p?region=x&storage-class=STANDARD"),
            None
        );
        assert_eq!(secret_query_param("a?password=x"), None);
    }
}
