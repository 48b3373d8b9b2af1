//! Key paths such as `scenarios[0].steps[2].expect`, the address every error carries.

use std::fmt;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to a key or value, printed the way a user would write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    #[must_use]
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_owned()));
        next
    }

    /// This path extended by an array index.
    #[must_use]
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last table key on the path, if any.
    pub(crate) fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
    }

    /// This path without its last key (and any index after it), e.g. the table a field
    /// belongs to.
    #[must_use]
    pub(crate) fn without_last_key(&self) -> Self {
        let mut next = self.clone();
        while let Some(Segment::Index(_)) = next.0.last() {
            next.0.pop();
        }
        next.0.pop();
        next
    }

    /// Converts serde_path_to_error's path, which knows nothing of TOML quoting.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut out = Self::root();
        for segment in path {
            match segment {
                S::Seq { index } => out.0.push(Segment::Index(*index)),
                S::Map { key } => out.0.push(Segment::Key(key.clone())),
                S::Enum { variant } => out.0.push(Segment::Key(variant.clone())),
                S::Unknown => {}
            }
        }
        out
    }
}

/// Bare keys are printed as is; anything else is quoted, as TOML would need it.
fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.0 {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    if is_bare(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_dots_indices_and_quotes() {
        let p = KeyPath::root()
            .key("scenarios")
            .index(0)
            .key("steps")
            .index(2)
            .key("expect");
        assert_eq!(p.to_string(), "scenarios[0].steps[2].expect");
        assert_eq!(
            KeyPath::root().key("assets").key("my db").to_string(),
            "assets.\"my db\""
        );
        assert_eq!(KeyPath::root().to_string(), "");
        assert_eq!(p.last_key(), Some("expect"));
    }
}
