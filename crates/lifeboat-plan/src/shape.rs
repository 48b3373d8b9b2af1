//! Checks the keys of tagged tables (assets by `type`, notifiers by `type`, steps by verb)
//! before serde, so that a wrong key is reported against the keys of *this* kind of table.

use lifeboat_core::AssetKind;
use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use crate::{
    config::{AssetConfig, StepConfig, unknown},
    document::{At, Document, str_value},
    error::PlanError,
    key_path::KeyPath,
    notify::NotifyConfig,
    notify::NotifyKind,
    suggest,
};

pub(crate) fn check(doc: &Document<'_>) -> Result<(), PlanError> {
    check_assets(doc)?;
    check_notifiers(doc)?;
    check_steps(doc)
}

/// Entries of the table at `path` whose values are tables; other shapes are left to serde.
fn tables<'d, 'a>(
    doc: &'d Document<'a>,
    path: &[&str],
) -> impl Iterator<Item = (&'d str, &'d DeTable<'a>)> {
    doc.table(path)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match v.get_ref() {
            DeValue::Table(t) => Some((k.get_ref().as_ref(), t)),
            _ => None,
        })
}

fn check_assets(doc: &Document<'_>) -> Result<(), PlanError> {
    let names: Vec<&str> = AssetKind::ALL.iter().map(|k| k.as_str()).collect();
    for (name, table) in tables(doc, &["assets"]) {
        let base = KeyPath::root().key("assets").key(name);
        let Some(kind) = tag(doc, table, &base, &names, "asset type")? else {
            continue;
        };
        let Some(kind) = AssetKind::from_name(kind) else {
            continue;
        };
        let allowed: Vec<&str> = AssetConfig::COMMON_KEYS
            .iter()
            .chain(AssetConfig::kind_keys(kind))
            .copied()
            .collect();
        let others = |key: &str| {
            AssetKind::ALL
                .into_iter()
                .filter(|k| AssetConfig::kind_keys(*k).contains(&key))
                .map(AssetKind::as_str)
                .collect::<Vec<_>>()
        };
        check_keys(
            doc,
            table,
            &base,
            &allowed,
            &format!("an asset of type {kind}"),
            &others,
        )?;
    }
    Ok(())
}

fn check_notifiers(doc: &Document<'_>) -> Result<(), PlanError> {
    let names: Vec<&str> = NotifyKind::ALL.iter().map(|k| k.as_str()).collect();
    for (name, table) in tables(doc, &["notify"]) {
        let base = KeyPath::root().key("notify").key(name);
        let Some(kind) = tag(doc, table, &base, &names, "notifier type")? else {
            continue;
        };
        let Some(kind) = NotifyKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
            continue;
        };
        let others = |key: &str| {
            NotifyKind::ALL
                .into_iter()
                .filter(|k| NotifyConfig::kind_keys(*k).contains(&key))
                .map(NotifyKind::as_str)
                .collect::<Vec<_>>()
        };
        let what = format!("a notifier of type {}", kind.as_str());
        check_keys(
            doc,
            table,
            &base,
            NotifyConfig::kind_keys(kind),
            &what,
            &others,
        )?;
    }
    Ok(())
}

fn check_steps(doc: &Document<'_>) -> Result<(), PlanError> {
    let Some(DeValue::Array(scenarios)) = doc.root.get_ref().get("scenarios").map(Spanned::get_ref)
    else {
        return Ok(());
    };
    for (i, scenario) in scenarios.iter().enumerate() {
        let Some(DeValue::Array(steps)) = scenario.get_ref().get("steps").map(Spanned::get_ref)
        else {
            continue;
        };
        for (j, step) in steps.iter().enumerate() {
            let DeValue::Table(table) = step.get_ref() else {
                continue;
            };
            let base = KeyPath::root()
                .key("scenarios")
                .index(i)
                .key("steps")
                .index(j);
            check_step(doc, table, &base)?;
        }
    }
    Ok(())
}

fn check_step(doc: &Document<'_>, table: &DeTable<'_>, base: &KeyPath) -> Result<(), PlanError> {
    let verbs: Vec<&str> = table
        .iter()
        .map(|(k, _)| k.get_ref().as_ref())
        .filter(|k| StepConfig::VERBS.contains(k))
        .collect();
    let verbs_list = suggest::list(StepConfig::VERBS.iter().copied());
    match verbs.as_slice() {
        [] => {
            // `{ rn = "..." }` is better reported as a typo than as a step without a verb.
            for (key, _) in table {
                let key = key.get_ref().as_ref();
                if let Some(verb) = suggest::closest(key, StepConfig::VERBS.iter().copied()) {
                    return Err(
                        doc.key_error(&base.key(key), format!("unknown key, did you mean {verb}?"))
                    );
                }
            }
            Err(doc.error(base, "a step needs a verb").with_hint(format!(
                "write the step as {{ run = \"...\" }}; verbs: {verbs_list}"
            )))
        }
        [verb] => {
            let allowed = StepConfig::verb_keys(verb);
            let others = |key: &str| {
                StepConfig::VERBS
                    .iter()
                    .copied()
                    .filter(|v| StepConfig::verb_keys(v).contains(&key))
                    .collect::<Vec<_>>()
            };
            let article = if *verb == "http" { "an" } else { "a" };
            check_keys(
                doc,
                table,
                base,
                allowed,
                &format!("{article} {verb} step"),
                &others,
            )
        }
        [first, second, ..] => Err(doc
            .key_error(
                &base.key(second),
                format!("a step has one verb, found both {first} and {second}"),
            )
            .with_hint("split it into two steps")),
    }
}

/// Reads and checks the `type` of a tagged table. `None` when the tag is there but not a
/// string: serde then reports the type error.
fn tag<'t>(
    doc: &Document<'_>,
    table: &'t DeTable<'_>,
    base: &KeyPath,
    names: &[&str],
    what: &str,
) -> Result<Option<&'t str>, PlanError> {
    let path = base.key("type");
    if !table.contains_key("type") {
        return Err(doc.error(&path, "missing key").with_hint(format!(
            "add type = one of: {}",
            suggest::list(names.iter().copied())
        )));
    }
    let Some(kind) = str_value(table, "type") else {
        return Ok(None);
    };
    if !names.contains(&kind) {
        let (message, hint) = unknown(&format!("unknown {what} {kind:?}"), kind, names);
        return Err(doc.error(&path, message).or_hint(hint));
    }
    Ok(Some(kind))
}

/// Every key of `table` must be in `allowed`; `owners` says which other kinds take a key.
fn check_keys(
    doc: &Document<'_>,
    table: &DeTable<'_>,
    base: &KeyPath,
    allowed: &[&str],
    what: &str,
    owners: &dyn Fn(&str) -> Vec<&'static str>,
) -> Result<(), PlanError> {
    for (key, _) in table {
        let key = key.get_ref().as_ref();
        if allowed.contains(&key) {
            continue;
        }
        let (message, mut hint) = unknown(&format!("unknown key for {what}"), key, allowed);
        let owners = owners(key);
        if !owners.is_empty() && !message.contains("did you mean") {
            hint = Some(format!(
                "{key} is accepted by: {}; {what} takes: {}",
                suggest::list(owners.iter().copied()),
                suggest::list(allowed.iter().copied())
            ));
        }
        return Err(doc.error_at(&base.key(key), At::Key, message).or_hint(hint));
    }
    Ok(())
}
