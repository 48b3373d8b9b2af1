//! The file model: `lifeboat.toml` as serde sees it, before any validation.
//!
//! Every table denies unknown keys. Tables whose accepted keys depend on a tag (assets on
//! `type`, notifiers on `type`, steps on their verb) are modelled here as the union of all
//! their keys; `shape` checks the per-tag lists first, so the user is told which keys this
//! asset type or step verb takes rather than the union.

use indexmap::IndexMap;
use lifeboat_core::{AssetKind, Priority};
use serde::Deserialize;

use crate::{
    document::{At, Document},
    error::PlanError,
    key_path::KeyPath,
    notify::NotifyConfig,
    suggest,
};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PlanFileConfig {
    pub version: Option<u32>,
    pub plan: Option<PlanConfig>,
    pub repositories: Option<IndexMap<String, RepositoryConfig>>,
    pub assets: Option<IndexMap<String, AssetConfig>>,
    #[serde(default)]
    pub notify: IndexMap<String, NotifyConfig>,
    #[serde(default)]
    pub scenarios: Vec<ScenarioConfig>,
    pub schedules: Option<SchedulesConfig>,
    pub dashboard: Option<crate::dashboard::DashboardConfig>,
}

/// `[schedules]`: what the daemon runs besides each asset's own backup schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SchedulesConfig {
    pub time_zone: Option<String>,
    pub jitter: Option<String>,
    pub verify: Option<String>,
    pub verify_read_data: Option<String>,
    pub drill: Option<String>,
    pub forget: Option<String>,
    pub prune: Option<String>,
    pub copy: Option<String>,
    pub parallel: Option<u32>,
    pub rpo_reminder: Option<String>,
    pub scenarios: Option<IndexMap<String, String>>,
}

/// `[plan]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PlanConfig {
    pub name: Option<String>,
    pub rpo: Option<String>,
    pub rto: Option<String>,
    pub min_free: Option<String>,
}

/// `[repositories.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RepositoryConfig {
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password_command: Option<String>,
    pub copy_from: Option<String>,
    pub retention: Option<RetentionConfig>,
    pub access_key_id_env: Option<String>,
    pub secret_access_key_env: Option<String>,
    pub object_lock: Option<String>,
}

/// `[assets.NAME]`: the union of every asset type's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AssetConfig {
    #[serde(rename = "type")]
    pub kind: AssetKind,
    pub priority: Option<Priority>,
    pub schedule: Option<String>,
    pub rpo: Option<String>,
    pub rto: Option<String>,
    pub retention: Option<RetentionConfig>,
    pub anomaly: Option<AnomalyConfig>,
    pub size: Option<SizeConfig>,
    #[serde(default)]
    pub checks: Vec<String>,
    // postgres, redis, mysql
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password_command: Option<String>,
    // postgres
    pub jobs: Option<u32>,
    pub globals: Option<bool>,
    // sqlite
    pub path: Option<String>,
    // redis
    pub username: Option<String>,
    // redis, postgres-cluster
    pub data_dir: Option<String>,
    // postgres-cluster
    pub wal: Option<WalConfig>,
    pub stream_interval: Option<String>,
    // files
    pub paths: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub one_file_system: Option<bool>,
    pub redact: Option<RedactConfig>,
    // docker-volume
    pub volume: Option<String>,
    pub stop: Option<Vec<String>>,
    pub pause: Option<Vec<String>>,
    pub docker_host: Option<String>,
    // command
    pub backup: Option<String>,
    pub restore: Option<String>,
    pub filename: Option<String>,
}

impl AssetConfig {
    /// Keys every asset accepts.
    pub(crate) const COMMON_KEYS: &[&str] = &[
        "type",
        "priority",
        "schedule",
        "rpo",
        "rto",
        "retention",
        "anomaly",
        "size",
        "checks",
    ];

    /// Keys an asset of `kind` accepts besides [`Self::COMMON_KEYS`].
    pub(crate) const fn kind_keys(kind: AssetKind) -> &'static [&'static str] {
        match kind {
            AssetKind::Postgres => &[
                "url",
                "password-env",
                "password-file",
                "password-command",
                "jobs",
                "globals",
            ],
            AssetKind::PostgresCluster => &[
                "url",
                "password-env",
                "password-file",
                "password-command",
                "data-dir",
                "wal",
                "stream-interval",
            ],
            AssetKind::Sqlite => &["path"],
            AssetKind::Redis => &[
                "url",
                "username",
                "password-env",
                "password-file",
                "password-command",
                "data-dir",
            ],
            AssetKind::Mysql => &["url", "password-env", "password-file", "password-command"],
            AssetKind::Files => &["paths", "exclude", "one-file-system", "redact"],
            AssetKind::DockerVolume => &["volume", "stop", "pause", "exclude", "docker-host"],
            AssetKind::Command => &["backup", "restore", "filename"],
        }
    }
}

/// `wal = "archive"` or `"stream"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WalConfig {
    Archive,
    Stream,
}

/// `redact = "values"`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RedactConfig {
    Values,
}

/// `retention = { last = 4, daily = 7, ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RetentionConfig {
    pub last: Option<KeepCount>,
    pub hourly: Option<KeepCount>,
    pub daily: Option<KeepCount>,
    pub weekly: Option<KeepCount>,
    pub monthly: Option<KeepCount>,
    pub yearly: Option<KeepCount>,
    pub within: Option<String>,
}

/// A retention count: a number, or a word (`"forever"`), checked when the plan resolves.
#[derive(Debug)]
pub(crate) enum KeepCount {
    Number(u32),
    Word(String),
}

impl<'de> Deserialize<'de> for KeepCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = KeepCount;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer or \"forever\"")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KeepCount, E> {
                u32::try_from(v)
                    .map(KeepCount::Number)
                    .map_err(|_| E::custom(format!("expected a non-negative integer, found {v}")))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeepCount, E> {
                u32::try_from(v)
                    .map(KeepCount::Number)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeepCount, E> {
                Ok(KeepCount::Word(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `anomaly = { below = 0.5, above = 2.0 }`: fractions of the average size of the asset's
/// previous snapshots.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AnomalyConfig {
    pub below: Option<f64>,
    pub above: Option<f64>,
}

/// `size = { min = "1KB", max = "50GB" }`: absolute bounds for a snapshot's size.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SizeConfig {
    pub min: Option<String>,
    pub max: Option<String>,
}

/// `[[scenarios]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ScenarioConfig {
    pub name: Option<String>,
    pub description: Option<String>,
    pub rto: Option<String>,
    pub steps: Option<Vec<StepConfig>>,
}

/// One step: the union of every verb's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct StepConfig {
    pub run: Option<String>,
    pub timeout: Option<String>,
    pub restore: Option<String>,
    pub snapshot: Option<String>,
    pub before: Option<String>,
    pub time: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    pub check: Option<String>,
    pub http: Option<String>,
    pub method: Option<String>,
    pub headers: Option<IndexMap<String, String>>,
    pub bearer_env: Option<String>,
    pub bearer_file: Option<String>,
    pub bearer_command: Option<String>,
    pub data: Option<String>,
    pub expect: Option<u16>,
    pub body: Option<String>,
    pub retries: Option<u32>,
    pub interval: Option<String>,
    pub wait: Option<String>,
    pub confirm: Option<String>,
    pub notify: Option<String>,
    pub target: Option<String>,
}

impl StepConfig {
    /// The keys that decide a step's kind; a step has exactly one.
    pub(crate) const VERBS: &[&str] = &[
        "run", "restore", "check", "http", "wait", "confirm", "notify",
    ];

    /// Keys a step with `verb` accepts, the verb included.
    pub(crate) fn verb_keys(verb: &str) -> &'static [&'static str] {
        match verb {
            "run" => &["run", "timeout"],
            "restore" => &[
                "restore", "snapshot", "before", "time", "to", "tables", "from",
            ],
            "check" => &["check"],
            "http" => &[
                "http",
                "method",
                "headers",
                "bearer-env",
                "bearer-file",
                "bearer-command",
                "data",
                "expect",
                "body",
                "retries",
                "interval",
            ],
            "wait" => &["wait", "timeout", "interval"],
            "confirm" => &["confirm"],
            "notify" => &["notify", "target"],
            _ => &[],
        }
    }
}

/// Deserializes the (already secret-checked and expanded) tree into the file model, turning
/// serde's messages into ours: the full key path, a position, and a did-you-mean.
pub(crate) fn deserialize(doc: &Document<'_>) -> Result<PlanFileConfig, PlanError> {
    let de = toml::de::Deserializer::from(doc.root.clone());
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = KeyPath::from_serde(e.path());
        let inner = e.into_inner();
        translate(doc, &path, inner.message(), inner.span())
    })
}

/// The field name under which toml passes a date or time through serde.
const TOML_DATETIME_FIELD: &str = "$__toml_private_datetime";

/// Rewrites one serde/toml message. serde's wording is stable (it comes from the default
/// methods of `serde::de::Error`), so matching on it is safe; anything unrecognised passes
/// through unchanged, still with its key path.
fn translate(
    doc: &Document<'_>,
    path: &KeyPath,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> PlanError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        // toml hands a date or time to serde as a table with one private field: where a
        // table belongs, the user wrote a date, not that key.
        if key == TOML_DATETIME_FIELD {
            let path = if path.last_key() == Some(key) {
                path.without_last_key()
            } else {
                path.clone()
            };
            return doc.error_with_span(
                &path,
                At::Value,
                span,
                "expected a table, found a date or time",
            );
        }
        let expected = backticked(rest.get(key.len() + 1..).unwrap_or_default());
        // serde_path_to_error puts the unknown key on the path already.
        let path = if path.last_key() == Some(key) {
            path.clone()
        } else {
            path.key(key)
        };
        let (message, hint) = unknown("unknown key", key, &expected);
        return doc
            .error_with_span(&path, At::Key, span, message)
            .or_hint(hint);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or_default();
        return doc.error_with_span(&path.key(key), At::Value, span, "missing key");
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let value = rest.split('`').next().unwrap_or_default();
        let expected = backticked(rest.get(value.len() + 1..).unwrap_or_default());
        let (message, hint) = unknown(&format!("unknown value {value:?}"), value, &expected);
        return doc
            .error_with_span(path, At::Value, span, message)
            .or_hint(hint);
    }
    let message = if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        // Strings are never echoed: a value that reaches here may come from ${VAR}.
        let found = found.split([' ', '`', '"']).next().unwrap_or(found);
        format!("expected {}, found {}", describe(expected), describe(found))
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let found = if found.starts_with("string") {
            "a string".to_owned()
        } else {
            let found = found.replace('`', "");
            found
                .strip_prefix("integer ")
                .map_or(found.clone(), str::to_owned)
        };
        format!("expected {}, found {found}", describe(expected))
    } else {
        message.to_owned()
    };
    doc.error_with_span(path, At::Value, span, message)
}

/// `did you mean X?` in the message when one key is close, else the full list as a hint.
pub(crate) fn unknown(what: &str, unknown: &str, expected: &[&str]) -> (String, Option<String>) {
    match suggest::closest(unknown, expected.iter().copied()) {
        Some(best) => (format!("{what}, did you mean {best}?"), None),
        None if expected.is_empty() => (what.to_owned(), None),
        None => (
            what.to_owned(),
            Some(format!(
                "expected one of: {}",
                suggest::list(expected.iter().copied())
            )),
        ),
    }
}

/// The names serde quotes in backticks: `a`, `b` or `c`.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

/// serde's and Rust's type words, in the user's (TOML's) terms.
fn describe(what: &str) -> String {
    let what = what.trim();
    let s = match what {
        "string" | "a string" | "a borrowed string" => "a string",
        "integer" => "an integer",
        "floating point" => "a number",
        "boolean" | "a boolean" => "a boolean (true or false)",
        "sequence" | "a sequence" => "an array",
        "map" | "a map" => "a table",
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" | "u64" | "usize" => "a non-negative integer",
        "f32" | "f64" => "a number",
        _ if what.starts_with("struct ") => "a table",
        _ if what.starts_with("enum ") || what.starts_with("unit variant") => "a string",
        other => return other.to_owned(),
    };
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyKind;

    /// The field list serde derives for `T`, captured through a deserializer that records it.
    fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        use serde::de::{self, Visitor};
        struct Introspect<'f>(&'f mut &'static [&'static str]);
        impl<'de> de::Deserializer<'de> for Introspect<'_> {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                *self.0 = fields;
                Err(de::Error::custom("captured"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut fields: &'static [&'static str] = &[];
        let _ = T::deserialize(Introspect(&mut fields));
        fields
    }

    #[test]
    fn per_kind_key_lists_match_the_file_model() {
        // If a key is renamed in a struct but not in a list, shape checks would accept a key
        // serde then rejects with the union list, or refuse a valid one.
        let asset = fields_of::<AssetConfig>();
        for kind in AssetKind::ALL {
            for key in AssetConfig::COMMON_KEYS
                .iter()
                .chain(AssetConfig::kind_keys(kind))
            {
                assert!(asset.contains(key), "{kind}: {key}");
            }
        }
        let covered: Vec<&str> = AssetKind::ALL
            .into_iter()
            .flat_map(AssetConfig::kind_keys)
            .chain(AssetConfig::COMMON_KEYS)
            .copied()
            .collect();
        for field in asset {
            assert!(
                covered.contains(field),
                "asset key {field} belongs to no type"
            );
        }

        let notify = fields_of::<NotifyConfig>();
        for kind in NotifyKind::ALL {
            for key in NotifyConfig::kind_keys(kind) {
                assert!(notify.contains(key), "{kind:?}: {key}");
            }
        }

        let step = fields_of::<StepConfig>();
        let mut covered = Vec::new();
        for verb in StepConfig::VERBS {
            assert!(StepConfig::verb_keys(verb).contains(verb));
            for key in StepConfig::verb_keys(verb) {
                assert!(step.contains(key), "{verb}: {key}");
                covered.push(*key);
            }
        }
        for field in step {
            assert!(
                covered.contains(field),
                "step key {field} belongs to no verb"
            );
        }
    }

    #[test]
    fn reads_serde_expected_lists() {
        assert_eq!(
            backticked(", expected one of `a`, `b`, `c`"),
            ["a", "b", "c"]
        );
        assert_eq!(backticked(", expected `a` or `b`"), ["a", "b"]);
        assert!(backticked(", there are no fields").is_empty());
    }
}
