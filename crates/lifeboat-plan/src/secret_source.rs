//! Where a secret comes from: never the plan file itself.

use std::path::PathBuf;

/// A secret named by `*-env`, `*-file` or `*-command` (e.g. `password-env`, `url-file`).
///
/// The plan holds only the name of the variable, the path or the command; the value is read
/// when a job needs it, and handed to children by environment or file, never argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's name (`password-env = "PGPASSWORD"`).
    Env(String),
    /// A file whose contents (trailing newline trimmed) are the secret; absolute.
    File(PathBuf),
    /// A shell command whose stdout is the secret (`pass show db`).
    Command(String),
}
