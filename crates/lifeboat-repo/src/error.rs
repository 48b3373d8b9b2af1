//! The repository's errors, mapped from rustic's long texts to short ones that name the thing.

use std::path::PathBuf;

use lifeboat_core::Exit;
use rustic_core::RusticError;

/// What can go wrong in a repository operation. Each variant names the repository, asset,
/// snapshot or file concerned; the CLI maps [`RepoError::exit_code`] to the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("open repository {name} at {location}: no repository there")]
    NotFound { name: String, location: String },

    #[error("open repository {name} at {location}: wrong password")]
    WrongPassword { name: String, location: String },

    #[error("init repository {name} at {location}: a repository already exists there")]
    AlreadyExists { name: String, location: String },

    #[error("{action} in repository {name}: {detail}")]
    Backend {
        action: String,
        name: String,
        detail: String,
    },

    #[error("key of repository {name}: {detail}")]
    KeyRefused { name: String, detail: String },

    #[error("back up asset {asset}: {detail}")]
    SourceFailed { asset: String, detail: String },

    #[error("find snapshot {id} of asset {asset}: {detail}")]
    SnapshotNotFound {
        asset: String,
        id: String,
        detail: String,
    },

    #[error("read snapshot {snapshot} of asset {asset}: {detail}")]
    BadSnapshot {
        asset: String,
        snapshot: String,
        detail: String,
    },

    #[error(
        "verify artifact {artifact} of snapshot {snapshot}: checksum mismatch (manifest {expected}, read {actual})"
    )]
    ChecksumMismatch {
        artifact: String,
        snapshot: String,
        expected: String,
        actual: String,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("repository {name} is locked by {holder} (waited {waited_secs}s)")]
    Locked {
        name: String,
        holder: String,
        waited_secs: u64,
    },

    #[error(
        "repository {name} was called from inside an async runtime; run it through lifeboat_repo::blocking"
    )]
    InsideAsyncRuntime { name: String },

    #[error(
        "repository {name} has object-lock, but its bucket does not lock what it keeps: {detail}"
    )]
    NotImmutable { name: String, detail: String },
}

impl RepoError {
    /// The process exit code this error should end with (see the CLI's `ExitCode`).
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => Exit::NoRepository.code(),
            Self::WrongPassword { .. } => Exit::WrongPassword.code(),
            _ => Exit::Error.code(),
        }
    }

    pub(crate) fn backend(action: impl Into<String>, name: &str, err: &RusticError) -> Self {
        Self::Backend {
            action: action.into(),
            name: name.to_owned(),
            detail: short(err),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The first sentence of a rustic error, without its multi-line report.
pub(crate) fn short(err: &RusticError) -> String {
    let full = err.display_log();
    let mut text = full.strip_prefix("Error: ").unwrap_or(&full).to_owned();
    if let Some(start) = text.find(" (kind: ")
        && let Some(len) = text[start..].find(')')
    {
        text.replace_range(start..=start + len, "");
    }
    // rustic appends a backtrace to each error when RUST_BACKTRACE is set: frames are for
    // developers, not for one line of a report.
    let mut lines = Vec::new();
    let mut in_backtrace = false;
    for line in text.lines().map(str::trim) {
        if line == "Backtrace:" {
            in_backtrace = true;
            continue;
        }
        if in_backtrace {
            let frame = line.starts_with("at ")
                || line
                    .split_once(':')
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if frame {
                continue;
            }
            in_backtrace = false;
        }
        lines.push(line);
    }
    lines.join(" ")
}

pub type RepoResult<T> = Result<T, RepoError>;
