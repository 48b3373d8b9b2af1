//! Shared helpers for turning file-model values into resolved ones, each error at its key.

use std::{
    path::{Component, Path, PathBuf},
    time::Duration,
};

use crate::{
    document::{At, Document},
    error::PlanError,
    key_path::KeyPath,
    name::validate_name,
    secret_source::SecretSource,
};

/// The document (for positions) and the directory relative paths resolve against.
pub(crate) struct Resolver<'d, 'a> {
    pub(crate) doc: &'d Document<'a>,
    pub(crate) base_dir: PathBuf,
}

impl Resolver<'_, '_> {
    pub(crate) fn error(&self, path: &KeyPath, message: impl Into<String>) -> PlanError {
        self.doc.error(path, message)
    }

    /// A humantime duration ("30m", "4h", "1d 2h") that is longer than zero.
    pub(crate) fn duration(&self, path: &KeyPath, value: &str) -> Result<Duration, PlanError> {
        let hint = "write durations like \"30m\", \"4h\" or \"1d 2h\"";
        match humantime::parse_duration(value) {
            Ok(d) if d.is_zero() => Err(self
                .error(path, "duration must be longer than zero")
                .with_hint(hint)),
            Ok(d) => Ok(d),
            Err(e) => Err(self
                .error(path, format!("invalid duration {value:?}: {e}"))
                .with_hint(hint)),
        }
    }

    pub(crate) fn opt_duration(
        &self,
        path: &KeyPath,
        value: Option<&String>,
    ) -> Result<Option<Duration>, PlanError> {
        value.map(|v| self.duration(path, v)).transpose()
    }

    /// A path from the file: absolute, or relative to the plan's directory; made lexically
    /// normal so that `a/../b` and `b` compare equal. Nothing is read from disk.
    pub(crate) fn path(&self, value: &str) -> PathBuf {
        normalize(&self.base_dir.join(value))
    }

    /// A name following [`validate_name`]; `at` says whether it sits in a key or a value.
    pub(crate) fn name(&self, path: &KeyPath, at: At, name: &str) -> Result<(), PlanError> {
        validate_name(name).map_err(|e| self.doc.error_at(path, at, e.message).with_hint(e.hint))
    }

    /// A string that must not be empty (an empty command or variable name is always a slip).
    pub(crate) fn non_empty<'v>(
        &self,
        path: &KeyPath,
        value: &'v str,
    ) -> Result<&'v str, PlanError> {
        if value.trim().is_empty() {
            Err(self.error(path, "may not be empty"))
        } else {
            Ok(value)
        }
    }

    /// At most one of `{prefix}-env`, `{prefix}-file`, `{prefix}-command`.
    pub(crate) fn secret_source(
        &self,
        base: &KeyPath,
        prefix: &str,
        env: Option<&String>,
        file: Option<&String>,
        command: Option<&String>,
    ) -> Result<Option<SecretSource>, PlanError> {
        let given: Vec<(&str, &String)> = [("env", env), ("file", file), ("command", command)]
            .into_iter()
            .filter_map(|(suffix, v)| v.map(|v| (suffix, v)))
            .collect();
        match given.as_slice() {
            [] => Ok(None),
            [(suffix, value)] => {
                let path = base.key(&format!("{prefix}-{suffix}"));
                let value = self.non_empty(&path, value)?;
                Ok(Some(match *suffix {
                    "env" => SecretSource::Env(value.to_owned()),
                    "file" => SecretSource::File(self.path(value)),
                    _ => SecretSource::Command(value.to_owned()),
                }))
            }
            [(first, _), (second, _), ..] => Err(self
                .doc
                .key_error(
                    &base.key(&format!("{prefix}-{second}")),
                    format!("{prefix}-{first} and {prefix}-{second} are both given"),
                )
                .with_hint(format!(
                    "keep only one of {prefix}-env, {prefix}-file and {prefix}-command"
                ))),
        }
    }
}

/// Removes `.` and resolves `..` without touching the disk (`..` at the root stays at the root).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
        assert_eq!(normalize(Path::new("a/../../b")), Path::new("../b"));
        assert_eq!(normalize(Path::new("./")), Path::new("."));
        assert_eq!(normalize(Path::new("/srv/data/")), Path::new("/srv/data"));
    }
}
