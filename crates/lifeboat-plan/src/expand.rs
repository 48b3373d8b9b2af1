//! `${VAR}` in string values, expanded from the environment.

use toml::de::{DeTable, DeValue};

use crate::{document::Document, error::PlanError, key_path::KeyPath};

/// Values handed to a shell or a database verbatim: the shell expands its own variables, and a
/// `${` in SQL is not ours to touch. A restore step's `snapshot`, `before` and `time` are
/// expanded when the step runs ([`expand_now`]): which snapshot predates a breach is known only during
/// the incident.
fn is_verbatim(key: &str) -> bool {
    matches!(
        key,
        "backup" | "restore" | "run" | "wait" | "checks" | "snapshot" | "before" | "time"
    ) || key.ends_with("-command")
}

/// Expands `${VAR}` and `${VAR:-default}` in `text` from the process environment now, for
/// values the plan leaves to run time (a restore step's `snapshot`, `before` and `time`).
///
/// # Errors
/// The message names the unset variable (or the unterminated reference).
pub fn expand_now(text: &str) -> Result<String, String> {
    expand_str(text, &|name| std::env::var(name).ok()).map_err(|f| match f {
        Fault::Unset(var) => format!("environment variable {var} is not set"),
        Fault::Unterminated => format!("unterminated ${{ in {text:?}"),
    })
}

/// Reads a variable; `None` when it is unset (or not valid Unicode).
pub(crate) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// Expands every `${VAR}` in the tree, in place. Spans stay those of the original text.
pub(crate) fn expand(doc: &mut Document<'_>, env: Env<'_>) -> Result<(), PlanError> {
    let mut failure = None;
    walk_table(doc.root.get_mut(), &KeyPath::root(), env, &mut failure);
    match failure {
        None => Ok(()),
        Some((path, Fault::Unset(var))) => Err(doc
            .error(&path, format!("environment variable {var} is not set"))
            .with_hint(format!(
                "set {var}, give a default with ${{{var}:-value}}, or write the value without ${{{var}}}"
            ))),
        Some((path, Fault::Unterminated)) => Err(doc
            .error(&path, "unterminated ${ in value")
            .with_hint("write ${NAME} for a variable, or $${ for a literal ${")),
    }
}

enum Fault {
    Unset(String),
    Unterminated,
}

type Failure = Option<(KeyPath, Fault)>;

fn walk_table(table: &mut DeTable<'_>, path: &KeyPath, env: Env<'_>, failure: &mut Failure) {
    for (key, value) in table.iter_mut() {
        if failure.is_some() {
            return;
        }
        let key = key.get_ref().as_ref();
        if is_verbatim(key) {
            continue;
        }
        walk_value(value.get_mut(), &path.key(key), env, failure);
    }
}

fn walk_value(value: &mut DeValue<'_>, path: &KeyPath, env: Env<'_>, failure: &mut Failure) {
    match value {
        DeValue::Table(t) => walk_table(t, path, env, failure),
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if failure.is_some() {
                    return;
                }
                walk_value(item.get_mut(), &path.index(i), env, failure);
            }
        }
        DeValue::String(s) if s.contains('$') => match expand_str(s, env) {
            Ok(expanded) => *s = expanded.into(),
            Err(fault) => *failure = Some((path.clone(), fault)),
        },
        _ => {}
    }
}

/// `${NAME}` is replaced, `${NAME:-default}` falls back to `default` when `NAME` is unset or
/// empty (as in the shell), `$${` is a literal `${`, any other `$` stays as it is.
fn expand_str(s: &str, env: Env<'_>) -> Result<String, Fault> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(Fault::Unterminated)?;
            let reference = &tail[..end];
            let value = match reference.split_once(":-") {
                Some((name, default)) => env(name)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_owned()),
                None => env(reference).ok_or_else(|| Fault::Unset(reference.to_owned()))?,
            };
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOME").then(|| "/home/ops".to_owned())
    }

    #[test]
    fn expands_references_and_keeps_other_dollars() {
        let e: Env<'_> = &env;
        assert_eq!(
            expand_str("${HOME}/x", e).ok().as_deref(),
            Some("/home/ops/x")
        );
        assert_eq!(
            expand_str("a$b $${HOME} $", e).ok().as_deref(),
            Some("a$b ${HOME} $")
        );
        assert!(matches!(expand_str("${NOPE}", e), Err(Fault::Unset(v)) if v == "NOPE"));
        assert!(matches!(expand_str("${HOME", e), Err(Fault::Unterminated)));
        assert_eq!(
            expand_str("${NOPE:-db.internal}:${HOME:-/root}", e)
                .ok()
                .as_deref(),
            Some("db.internal:/home/ops")
        );
        assert_eq!(expand_str("${NOPE:-}x", e).ok().as_deref(), Some("x"));
    }
}
