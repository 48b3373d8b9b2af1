//! The parsed TOML tree with spans: the source of line and column for every error.

use std::{ops::Range, path::Path};

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use crate::{
    error::{PlanError, line_column},
    key_path::{KeyPath, Segment},
};

/// Whether an error is about a key (unknown, misnamed) or about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    Key,
    Value,
}

/// A plan file parsed into TOML's spanned tree. Validation walks the typed model; whenever it
/// finds a fault it asks this tree where the faulty key sits, by key path.
pub(crate) struct Document<'a> {
    pub(crate) file: &'a Path,
    text: &'a str,
    pub(crate) root: Spanned<DeTable<'a>>,
}

/// What [`Document::locate`] found for a key path.
struct Found {
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// The whole path exists; otherwise key and value are those of its deepest existing prefix.
    complete: bool,
}

impl<'a> Document<'a> {
    /// Parses TOML syntax only; a syntax error gets toml's own message and position.
    pub(crate) fn parse(text: &'a str, file: &'a Path) -> Result<Self, PlanError> {
        match DeTable::parse(text) {
            Ok(root) => Ok(Self { file, text, root }),
            Err(e) => {
                // Only the message and the span: toml's Display quotes the source line, which
                // could hold a secret.
                let message = e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut err = PlanError::new(file, format!("invalid TOML: {message}"));
                if let Some(span) = e.span() {
                    let (line, column) = line_column(text, span.start);
                    err.line = Some(line);
                    err.column = Some(column);
                }
                Err(err)
            }
        }
    }

    /// An error about the value at `path` (or, if the path does not exist, at its deepest
    /// existing parent: a missing key is reported where its table starts).
    pub(crate) fn error(&self, path: &KeyPath, message: impl Into<String>) -> PlanError {
        self.error_at(path, At::Value, message)
    }

    /// An error about the key itself, e.g. an unknown or badly named key.
    pub(crate) fn key_error(&self, path: &KeyPath, message: impl Into<String>) -> PlanError {
        self.error_at(path, At::Key, message)
    }

    pub(crate) fn error_at(&self, path: &KeyPath, at: At, message: impl Into<String>) -> PlanError {
        let found = self.locate(path);
        let span = match (at, found.complete) {
            (At::Key, _) | (At::Value, false) => found.key.or(found.value),
            (At::Value, true) => found.value.or(found.key),
        };
        let mut err = PlanError::new(self.file, message);
        err.key_path = path.to_string();
        if let Some(span) = span {
            let (line, column) = line_column(self.text, span.start);
            err.line = Some(line);
            err.column = Some(column);
        }
        err
    }

    /// Like [`Self::error_at`], falling back to a span toml reported when the path is unknown.
    pub(crate) fn error_with_span(
        &self,
        path: &KeyPath,
        at: At,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> PlanError {
        let mut err = self.error_at(path, at, message);
        if err.line.is_none()
            && let Some(span) = span
        {
            let (line, column) = line_column(self.text, span.start);
            err.line = Some(line);
            err.column = Some(column);
        }
        err
    }

    fn locate(&self, path: &KeyPath) -> Found {
        let mut found = Found {
            key: None,
            value: None,
            complete: true,
        };
        let mut table: Option<&DeTable<'a>> = Some(self.root.get_ref());
        let mut value: Option<&DeValue<'a>> = None;
        for segment in path.segments() {
            let next = match segment {
                Segment::Key(k) => {
                    table
                        .and_then(|t| t.get_key_value(k.as_str()))
                        .map(|(key, v)| {
                            found.key = Some(key.span());
                            v
                        })
                }
                Segment::Index(i) => match value {
                    Some(DeValue::Array(a)) => a.get(*i).inspect(|v| found.key = Some(v.span())),
                    _ => None,
                },
            };
            let Some(next) = next else {
                found.complete = false;
                return found;
            };
            found.value = Some(next.span());
            value = Some(next.get_ref());
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        found
    }

    /// The table at `path`, if there is one.
    pub(crate) fn table(&self, path: &[&str]) -> Option<&DeTable<'a>> {
        let mut table = self.root.get_ref();
        for key in path {
            match table.get(*key).map(Spanned::get_ref) {
                Some(DeValue::Table(t)) => table = t,
                _ => return None,
            }
        }
        Some(table)
    }
}

/// The string value of `key` in `table`, if it is a string.
pub(crate) fn str_value<'t>(table: &'t DeTable<'_>, key: &str) -> Option<&'t str> {
    table.get(key).and_then(|v| v.get_ref().as_str())
}
