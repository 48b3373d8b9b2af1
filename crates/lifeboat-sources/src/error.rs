use std::path::PathBuf;

/// A source that cannot be backed up or restored. Messages name the asset and the path or
/// command; `hint` says what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("read asset {asset}: {path}: {reason}")]
    Path {
        asset: String,
        path: PathBuf,
        reason: String,
        hint: Option<String>,
    },

    #[error("run {what} of asset {asset}: {reason}")]
    Command {
        asset: String,
        what: &'static str,
        reason: String,
    },

    #[error("asset {asset}: {reason}")]
    Unsupported { asset: String, reason: String },

    /// A database server that refused, failed or could not be reached. `server` names the
    /// kind and address, redacted (`PostgreSQL 127.0.0.1:5432/app`).
    #[error("asset {asset}: {server}: {reason}")]
    Server {
        asset: String,
        server: String,
        reason: String,
        hint: Option<String>,
    },
}

impl SourceError {
    /// One line the user can act on, when there is one.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Path { hint, .. } | Self::Server { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}
