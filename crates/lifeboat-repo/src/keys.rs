//! The repository's keys: restic's key files (`keys/<id>`), each holding the master key
//! encrypted with one password, so that restic opens the repository with any of them.

use lifeboat_core::Secret;
use rustic_core::{
    FileType, KeyOptions,
    repofile::{KeyFile, KeyId},
};
use serde::Serialize;

use crate::{
    error::{RepoError, RepoResult},
    repository::Repo,
};

/// One key of a repository, as `key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    /// The key this process opened the repository with.
    pub current: bool,
    pub username: Option<String>,
    pub hostname: Option<String>,
    /// RFC 3339, when the key file says.
    pub created: Option<String>,
}

impl Repo {
    /// Every key of the repository, the current one marked.
    ///
    /// # Errors
    /// A key file that cannot be listed or read.
    pub fn keys(&self) -> RepoResult<Vec<KeyInfo>> {
        let be = self.config.backends()?.repository();
        let current = self.inner.key_id().map(|k| k.to_hex().to_string());
        let ids: Vec<KeyId> = self
            .inner
            .list::<KeyId>()
            .map_err(|e| self.err("list keys", &e))?
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let bytes = be
                .read_full(FileType::Key, &id)
                .map_err(|e| self.err("read a key", &e))?;
            let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| RepoError::Backend {
                action: "read a key".to_owned(),
                name: self.config.name.clone(),
                detail: format!("key {id}: {e}"),
            })?;
            let id = id.to_hex().to_string();
            out.push(KeyInfo {
                current: current.as_deref() == Some(id.as_str()),
                id,
                username: file.username,
                hostname: file.hostname,
                created: file.created.map(|t| t.timestamp().to_string()),
            });
        }
        out.sort_by(|a, b| b.current.cmp(&a.current).then(a.created.cmp(&b.created)));
        Ok(out)
    }

    /// Adds a key opened by `password`, labelled with who made it and where. Returns its id.
    ///
    /// # Errors
    /// The key file cannot be written.
    pub fn add_key(
        &self,
        password: &Secret,
        username: Option<String>,
        hostname: Option<String>,
    ) -> RepoResult<String> {
        let opts = KeyOptions::default()
            .hostname(hostname)
            .username(username)
            .with_created(true);
        let id = self
            .inner
            .add_key(password.expose(), &opts)
            .map_err(|e| self.err("add a key", &e))?;
        Ok(id.to_hex().to_string())
    }

    /// Removes the key whose id starts with `prefix`; never the one this process opened the
    /// repository with. Returns the full id.
    ///
    /// # Errors
    /// No such key, an ambiguous prefix, the current key, or a backend error.
    pub fn remove_key(&self, prefix: &str) -> RepoResult<String> {
        let keys = self.keys()?;
        let matching: Vec<&KeyInfo> = keys.iter().filter(|k| k.id.starts_with(prefix)).collect();
        let usage = |detail: String| RepoError::KeyRefused {
            name: self.config.name.clone(),
            detail,
        };
        let key = match matching.as_slice() {
            [] => return Err(usage(format!("no key has an id starting with {prefix:?}"))),
            [one] => *one,
            _ => {
                return Err(usage(format!(
                    "{prefix:?} starts {} key ids; give more characters",
                    matching.len()
                )));
            }
        };
        if key.current {
            return Err(usage(format!(
                "key {} is the one this plan opens the repository with",
                &key.id[..8.min(key.id.len())]
            )));
        }
        let id: KeyId = key
            .id
            .parse::<rustic_core::Id>()
            .map_err(|e| usage(format!("key id {}: {e}", key.id)))?
            .into();
        self.inner
            .delete_key(&id)
            .map_err(|e| self.err("remove a key", &e))?;
        Ok(key.id.clone())
    }
}
