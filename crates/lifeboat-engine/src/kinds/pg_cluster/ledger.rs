//! The push ledger of a cluster's WAL archive (`.lifeboat/wal/<asset>.<repository>.pushed`):
//! what pushes stored, so PostgreSQL's later calls for segments a push took along return at
//! once. Only a shortcut: a line stands for the repository's record for an hour.

use std::{fs, io::Write, path::Path};

use jiff::Timestamp;

use crate::EngineError;

/// How long a ledger line stands for the repository's own record.
const LEDGER_TRUSTED_SECS: i64 = 3600;

/// The push ledger: one line per stored file, `NAME SHA256 UNIX-TIME LATENCY-SECS`.
pub(crate) struct Ledger(Vec<LedgerLine>);

struct LedgerLine {
    name: String,
    sha: String,
    at: i64,
    latency: f64,
}

impl Ledger {
    pub(crate) fn read(path: &Path) -> Self {
        let text = fs::read_to_string(path).unwrap_or_default();
        Self(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let (name, sha) = (f.next()?, f.next()?);
                    let at = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                    let latency = f.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
                    Some(LedgerLine {
                        name: name.to_owned(),
                        sha: sha.to_owned(),
                        at,
                        latency,
                    })
                })
                .collect(),
        )
    }

    /// Only the lines young enough to stand for the repository's record.
    pub(crate) fn recent(self, now: Timestamp) -> Self {
        let since = now.as_second() - LEDGER_TRUSTED_SECS;
        Self(self.0.into_iter().filter(|l| l.at >= since).collect())
    }

    pub(crate) fn sha(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|l| l.name == name)
            .map(|l| l.sha.as_str())
    }

    pub(crate) fn last_latency(&self) -> Option<f64> {
        self.0.last().map(|l| l.latency)
    }

    pub(crate) fn append(path: &Path, lines: &[String]) -> Result<(), EngineError> {
        if lines.is_empty() {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io("open", path, e))?;
        let mut text = lines.join("\n");
        text.push('\n');
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| EngineError::io("write", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_keeps_the_newest_line_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pushed");
        Ledger::append(
            &path,
            &["A 11 100 0.5".to_owned(), "B 22 100 1.5".to_owned()],
        )
        .unwrap();
        Ledger::append(&path, &["A 33 200 0.25".to_owned()]).unwrap();
        let l = Ledger::read(&path);
        assert_eq!(l.sha("A"), Some("33"));
        assert_eq!(l.sha("B"), Some("22"));
        assert_eq!(l.sha("C"), None);
        assert_eq!(l.last_latency(), Some(0.25));
    }
}
