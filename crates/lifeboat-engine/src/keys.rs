//! `key`: the passwords that open a repository. Each is a restic key file, so restic opens the
//! repository with any of them; a new password never travels in argv or a log.

use std::path::Path;

use lifeboat_core::Secret;
use lifeboat_plan::PasswordSource;
use lifeboat_repo::{KeyInfo, LockKind, Repo};

use crate::{EngineError, actions::short, engine::Engine, host};

impl Engine {
    /// The keys of the primary repository (`--repo` chooses another).
    ///
    /// # Errors
    /// The repository cannot be opened or its keys read.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, EngineError> {
        Ok(self.open_primary()?.keys()?)
    }

    /// Adds a key opened by `password`. Returns its id.
    pub(crate) fn add_key(&self, password: &Secret) -> Result<String, EngineError> {
        let repo = self.open_primary()?;
        let _lock = repo.lock(LockKind::Shared, "key add")?;
        add(&repo, password)
    }

    /// Removes the key whose id starts with `prefix`, never the current one.
    pub(crate) fn remove_key(&self, prefix: &str) -> Result<String, EngineError> {
        let repo = self.open_primary()?;
        let _lock = repo.lock(LockKind::Shared, "key remove")?;
        repo.remove_key(prefix).map_err(|e| match e {
            lifeboat_repo::RepoError::KeyRefused { .. } => EngineError::usage(
                e.to_string(),
                Some("`lifeboat key list` shows the ids; `lifeboat key passwd` replaces the current one"),
            ),
            other => other.into(),
        })
    }

    /// Replaces the current key by one opened by `password`: the new key is written and
    /// proven to open the repository before the old one is removed, so an interruption leaves
    /// a key that works. Returns the new key's id and the removed one's.
    pub(crate) fn change_password(
        &self,
        password: &Secret,
    ) -> Result<(String, String), EngineError> {
        let repo = self.open_primary()?;
        let _lock = repo.lock(LockKind::Shared, "key passwd")?;
        let old = repo
            .keys()?
            .into_iter()
            .find(|k| k.current)
            .map(|k| k.id)
            .ok_or_else(|| {
                EngineError::usage("the current key is not among the repository's keys", None)
            })?;
        let new = add(&repo, password)?;
        let mut config = self.repo_config(self.primary())?;
        config.password = password.clone();
        let reopened = Repo::open(&config, &lifeboat_repo::Progress::hidden()).map_err(|e| {
            EngineError::usage(
                format!(
                    "the new key {} does not open the repository: {e}",
                    short(&new)
                ),
                Some("the old key was kept; remove the new one with `lifeboat key remove`"),
            )
        })?;
        // The embedded default's password file is Lifeboat's own: it follows the new key.
        if let PasswordSource::DefaultFile(path) = &self.primary().password {
            replace_password_file(path, password)?;
        }
        reopened.remove_key(&old)?;
        Ok((new, old))
    }
}

/// Writes `password` into the file at `path` (mode 0600) through a file renamed over it.
fn replace_password_file(path: &Path, password: &Secret) -> Result<(), EngineError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let tmp = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| EngineError::io("create", &tmp, e))?;
    file.write_all(format!("{}\n", password.expose()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| EngineError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io("replace", path, e))
}

fn add(repo: &Repo, password: &Secret) -> Result<String, EngineError> {
    if password.expose().is_empty() {
        return Err(EngineError::usage("the new password is empty", None));
    }
    Ok(repo.add_key(password, Some(host::user_name()), Some(host::host_name()))?)
}
