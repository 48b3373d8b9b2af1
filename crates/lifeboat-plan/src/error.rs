//! The one error type of this crate: where in the plan file, which key, what is wrong, what to do.

use std::path::PathBuf;

/// A plan file that cannot be read or is not a valid plan.
///
/// Displayed as `{file}:{line}:{column}: {key_path}: {message}`, followed by a second line
/// `  hint: {hint}` when the user can act on it. Parts that are unknown (no line for a missing
/// top-level key, no key path for a syntax error) are left out. No message ever contains the
/// value of a secret: the checks that refuse secrets name keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PlanError {
    /// The plan file, as given to [`crate::load`] or [`crate::parse`].
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when it is in the file.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// Full key path, e.g. `assets.web.retention.daily` or `scenarios[0].steps[2]`; empty for
    /// errors that concern the whole file.
    pub key_path: String,
    /// What is wrong, lowercase, without the location.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl PlanError {
    pub(crate) fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            key_path: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint unless the error already has one (the more specific hint wins).
    #[must_use]
    pub(crate) fn or_hint(self, hint: Option<String>) -> Self {
        match (self.hint.is_some(), hint) {
            (false, Some(h)) => self.with_hint(h),
            _ => self,
        }
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        if !self.key_path.is_empty() {
            out.push_str(": ");
            out.push_str(&self.key_path);
        }
        out.push_str(": ");
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_parts_and_leaves_out_missing_ones() {
        let mut e = PlanError::new("plan.toml", "unknown key, did you mean daily?");
        e.line = Some(12);
        e.column = Some(3);
        e.key_path = "assets.web.retention.dayly".into();
        assert_eq!(
            e.to_string(),
            "plan.toml:12:3: assets.web.retention.dayly: unknown key, did you mean daily?"
        );
        let e = PlanError::new("plan.toml", "missing key")
            .with_hint("add version = 1")
            .or_hint(Some("ignored".into()));
        assert_eq!(
            e.to_string(),
            "plan.toml: missing key\n  hint: add version = 1"
        );
    }

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 11), (2, 5));
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
