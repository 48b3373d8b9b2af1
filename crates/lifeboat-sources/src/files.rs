//! `files` assets: directories and files with their metadata, excludes, and `.env` redaction.

use std::{fs, path::PathBuf};

use lifeboat_core::{Payload, SourceFacts, TreeSpec};

use crate::{Source, SourceError};

#[derive(Debug, Clone)]
pub struct FilesSource {
    pub asset: String,
    /// Absolute, sorted, none nested in another.
    pub paths: Vec<PathBuf>,
    pub exclude: Vec<String>,
    pub one_file_system: bool,
    /// Keep keys, replace values (`redact = "values"`).
    pub redact_values: bool,
}

impl Source for FilesSource {
    fn preflight(&self) -> Result<(), SourceError> {
        for path in &self.paths {
            let fail = |reason: String, hint: Option<String>| SourceError::Path {
                asset: self.asset.clone(),
                path: path.clone(),
                reason,
                hint,
            };
            let meta = fs::symlink_metadata(path).map_err(|e| {
                let hint = (e.kind() == std::io::ErrorKind::NotFound).then(|| {
                    format!(
                        "fix assets.{}.paths in the plan, or create the path",
                        self.asset
                    )
                });
                fail(e.to_string(), hint)
            })?;
            let readable = if meta.is_dir() {
                fs::read_dir(path).map(drop)
            } else if meta.is_file() {
                fs::File::open(path).map(drop)
            } else {
                Ok(())
            };
            readable.map_err(|e| {
                fail(
                    e.to_string(),
                    Some("run Lifeboat as a user that can read it".into()),
                )
            })?;
        }
        Ok(())
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let spec = TreeSpec {
            paths: self.paths.clone(),
            exclude: self.exclude.clone(),
            one_file_system: self.one_file_system,
            filter: self
                .redact_values
                .then_some(redact_env_values as fn(&[u8]) -> Vec<u8>),
        };
        Ok((Payload::Tree(spec), SourceFacts::default()))
    }

    fn identity(&self) -> String {
        let paths: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("files {}", paths.join(", "))
    }
}

/// The value written in place of every redacted value.
pub const REDACTED: &str = "<redacted>";

/// Keeps the structure of an `.env`-style file and drops its values: `KEY=value` and
/// `export KEY=value` keep `KEY`; comments and blank lines stay; any other line (a continued
/// multi-line value, say) is replaced, so no secret survives.
#[must_use]
pub fn redact_env_values(content: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, eol) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(body);
        } else if let Some((key, _)) = body.split_once('=')
            && is_env_key(key.trim().trim_start_matches("export ").trim())
        {
            out.push_str(key);
            out.push('=');
            out.push_str(REDACTED);
        } else {
            out.push_str("# ");
            out.push_str(REDACTED);
        }
        out.push_str(eol);
    }
    out.into_bytes()
}

fn is_env_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_keys_and_comments_only() {
        let input = b"# database\nDB_URL=postgres://u:hunter2@db/x\nexport API_KEY='abc'\n\nMULTI=\"a\nsecret-continued\"\nEMPTY=\n";
        let out = String::from_utf8(redact_env_values(input)).unwrap();
        assert_eq!(
            out,
            "# database\nDB_URL=<redacted>\nexport API_KEY=<redacted>\n\nMULTI=<redacted>\n# <redacted>\nEMPTY=<redacted>\n"
        );
        assert!(
            !out.contains("hunter2") && !out.contains("abc") && !out.contains("secret-continued")
        );
    }

    #[test]
    fn preflight_names_a_missing_path() {
        let s = FilesSource {
            asset: "web".into(),
            paths: vec!["/nonexistent/lifeboat-test".into()],
            exclude: vec![],
            one_file_system: false,
            redact_values: false,
        };
        let e = s.preflight().unwrap_err();
        assert_eq!(
            e.to_string(),
            "read asset web: /nonexistent/lifeboat-test: No such file or directory (os error 2)"
        );
        assert!(e.hint().unwrap().contains("assets.web.paths"));
    }
}
