use lifeboat_repo::RepoError;
use lifeboat_sources::SourceError;

/// A job that could not be done. [`EngineError::exit_code`] gives the process exit code and
/// [`EngineError::hint`] one line the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Repo(#[from] RepoError),

    #[error(transparent)]
    Source(#[from] SourceError),

    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    #[error("read password of repository {repo}: {reason}")]
    Password {
        repo: String,
        reason: String,
        hint: Option<String>,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl EngineError {
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Repo(r) => r.exit_code(),
            _ => lifeboat_core::Exit::Error.code(),
        }
    }

    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Repo(RepoError::NotFound { .. }) => {
                Some("run `lifeboat init` to create it, or check the plan's url".into())
            }
            Self::Repo(RepoError::WrongPassword { .. }) => Some(
                "check the password source named in the plan (password-env, password-file or password-command)"
                    .into(),
            ),
            Self::Repo(RepoError::NotImmutable { .. }) => Some(
                "turn Object Lock on for the bucket with a default retention at least as long as object-lock (docs/immutable-copies.md), or remove object-lock from the repository"
                    .to_owned(),
            ),
            Self::Repo(RepoError::AlreadyExists { .. }) => {
                Some("use it as it is, or point the plan at an empty location".into())
            }
            // Sources write into the spool only what cannot be streamed (a parallel pg_dump's
            // directory, a MariaDB dump, a Redis RDB); pg_dump's message does not name the path.
            Self::Source(SourceError::Server { reason, .. })
                if reason.contains("No space left on device") =>
            {
                Some(format!(
                    "a dump written as files first (a parallel pg_dump, a MariaDB or Redis dump) needs room in the spool directory {}: point {} at a disk with more free space",
                    lifeboat_core::spool_dir().display(),
                    lifeboat_core::SPOOL_DIR_ENV
                ))
            }
            Self::Repo(RepoError::Backend { detail, .. })
                if detail.contains("failed to load signing credential") =>
            {
                Some("no S3 keys found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or access-key-id-env and secret-access-key-env in the repository's table".into())
            }
            Self::Repo(RepoError::Backend { detail, .. })
                if detail.contains("PermissionDenied") && detail.contains("service: s3") =>
            {
                Some("the S3 store refused the keys: check access-key-id-env and secret-access-key-env in the repository's table, or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_PROFILE, and that the keys may read and write the bucket".into())
            }
            Self::Repo(RepoError::Locked { .. }) => Some(format!(
                "wait for that job to end, or set {} to wait longer; if its process is gone, `lifeboat unlock` removes stale locks",
                lifeboat_repo::LOCK_WAIT_ENV
            )),
            Self::Source(s) => s.hint().map(str::to_owned),
            Self::Usage { hint, .. } | Self::Password { hint, .. } => hint.clone(),
            _ => None,
        }
    }

    /// An error the user can fix by asking differently, with what to change.
    #[must_use]
    pub fn usage(message: impl Into<String>, hint: Option<&str>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
