//! `${VAR}` in string values, expanded from the environment.

use toml::de::{DeTable, DeValue};

use crate::{document::Document, error::PlanError, key_path::KeyPath};

/// Values handed to a shell or a database verbatim: the shell expands its own variables, and a
/// `${` in SQL is not ours to touch.
fn is_verbatim(key: &str) -> bool {
    matches!(key, "backup" | "restore" | "run" | "wait" | "checks") || key.ends_with("-command")
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
            .with_hint(format!("set {var}, or write the value without ${{{var}}}"))),
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

/// `${NAME}` is replaced, `$${` is a literal `${`, any other `$` stays as it is.
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
            let name = &tail[..end];
            let value = env(name).ok_or_else(|| Fault::Unset(name.to_owned()))?;
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
    }
}
