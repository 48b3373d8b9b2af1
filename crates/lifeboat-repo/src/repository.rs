//! [`Repo`]: one opened repository and every operation Lifeboat performs on it.
//!
//! Every method blocks and may do network I/O. rustic's S3 backend runs its own tokio runtime
//! and panics when called from an async task: async callers go through [`crate::blocking`].
//!
//! This file holds the opening, creation and locking of a repository. The other operations are
//! `impl Repo` blocks in sibling files: `listing.rs` (snapshots), `backup.rs`, `reader.rs`
//! (manifests and artifacts), `restore_tree.rs` (files back to disk) and `maintenance.rs`
//! (forget, prune, copy).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use rustic_core::{
    ConfigOptions, Credentials, IndexedFullStatus, KeyOptions, OpenStatus, Repository,
    RepositoryOptions,
    repofile::{KeyId, MasterKey},
};
use sha2::{Digest, Sha256};

use crate::{
    config::RepoConfig,
    error::{RepoError, RepoResult},
    lock::{LockInfo, LockKind, Locks, RepoLock, lock_wait_from_env},
    progress::Progress,
    snapshot::SnapshotInfo,
};

/// Master keys this process derived, by repository location and password (hashed), with
/// the key file that opened them.
type KeyCache = HashMap<[u8; 32], (KeyId, MasterKey)>;

static KEYS: LazyLock<Mutex<KeyCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock_keys() -> std::sync::MutexGuard<'static, KeyCache> {
    KEYS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key_cache_id(config: &RepoConfig) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(config.location_text().as_bytes());
    h.update([0]);
    h.update(config.password.expose().as_bytes());
    h.finalize().into()
}

/// An opened repository.
pub struct Repo {
    pub(crate) config: RepoConfig,
    progress: Progress,
    /// Kept so that later operations re-open without deriving the key from the password again
    /// (rustic's typestate consumes the repository on each indexing).
    pub(crate) key: MasterKey,
    locks: Arc<Locks>,
    pub(crate) inner: Repository<OpenStatus>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("name", &self.config.name)
            .field("location", &self.config.location_text())
            .finish_non_exhaustive()
    }
}

fn options(config: &RepoConfig) -> RepositoryOptions {
    // A local repository is as fast as a cache, so only remote ones get one.
    let local = matches!(config.location, lifeboat_core::RepoLocation::Local { .. });
    RepositoryOptions::default().no_cache(local)
}

fn new_repository(config: &RepoConfig, progress: &Progress) -> RepoResult<Repository<()>> {
    let backends = config.backends()?;
    Repository::new_with_progress(&options(config), &backends, progress.clone())
        .map_err(|err| RepoError::backend("open", &config.name, &err))
}

impl Repo {
    /// Creates a new repository. Refuses when one already exists at the location.
    pub fn init(config: &RepoConfig, progress: &Progress) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if Self::exists_raw(&repo, config)? {
            return Err(RepoError::AlreadyExists {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        let inner = repo
            .init(
                &Credentials::password(config.password.expose()),
                &KeyOptions::default(),
                &ConfigOptions::default(),
            )
            .map_err(|err| RepoError::backend("init", &config.name, &err))?;
        Self::from_open(config, progress, inner)
    }

    /// Creates a new repository with the same chunker parameters as `like`, so that copying
    /// snapshots from `like` keeps them deduplicated.
    pub fn init_like(config: &RepoConfig, like: &Self, progress: &Progress) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if Self::exists_raw(&repo, config)? {
            return Err(RepoError::AlreadyExists {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        let mut file = like.inner.config().clone();
        file.id = rustic_core::Id::random().into();
        file.is_hot = None;
        let inner = repo
            .init_with_config(
                &Credentials::password(config.password.expose()),
                &KeyOptions::default(),
                file,
            )
            .map_err(|err| RepoError::backend("init", &config.name, &err))?;
        Self::from_open(config, progress, inner)
    }

    /// Opens an existing repository: [`RepoError::NotFound`] when there is none,
    /// [`RepoError::WrongPassword`] when no key matches.
    pub fn open(config: &RepoConfig, progress: &Progress) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if !Self::exists_raw(&repo, config)? {
            return Err(RepoError::NotFound {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        if let Some(inner) = Self::open_known(config, progress)? {
            return Self::from_open(config, progress, inner);
        }
        let inner = repo
            .open(&Credentials::password(config.password.expose()))
            .map_err(|err| {
                if err.is_code("C002") {
                    RepoError::WrongPassword {
                        name: config.name.clone(),
                        location: config.location_text(),
                    }
                } else {
                    RepoError::backend("open", &config.name, &err)
                }
            })?;
        if let Some(key_id) = *inner.key_id() {
            lock_keys().insert(key_cache_id(config), (key_id, inner.key()));
        }
        Self::from_open(config, progress, inner)
    }

    /// Opens with the master key this process already derived from the same password, when
    /// the key file that password opened is still in the repository: deriving it again
    /// (scrypt, as restic's key files ask) takes most of a second, and the daemon opens the
    /// repository for every page. A removed key is never honoured from here.
    fn open_known(
        config: &RepoConfig,
        progress: &Progress,
    ) -> RepoResult<Option<Repository<OpenStatus>>> {
        let Some((key_id, key)) = lock_keys().get(&key_cache_id(config)).cloned() else {
            return Ok(None);
        };
        let inner = new_repository(config, progress)?
            .open(&Credentials::Masterkey(key))
            .map_err(|e| RepoError::backend("open", &config.name, &e))?;
        let still_there = inner
            .list::<KeyId>()
            .map_err(|e| RepoError::backend("list keys", &config.name, &e))?
            .any(|id| id == key_id);
        if still_there {
            Ok(Some(inner))
        } else {
            lock_keys().remove(&key_cache_id(config));
            Ok(None)
        }
    }

    fn from_open(
        config: &RepoConfig,
        progress: &Progress,
        inner: Repository<OpenStatus>,
    ) -> RepoResult<Self> {
        let key = inner.key();
        let locks = Arc::new(Locks::new(&config.name, config.lock_store()?, &key));
        Ok(Self {
            config: config.clone(),
            progress: progress.clone(),
            key,
            locks,
            inner,
        })
    }

    /// Locks the repository for one job (see `lock.rs` for the rule), waiting for conflicting
    /// locks up to `$LIFEBOAT_LOCK_WAIT` (10 minutes unless set).
    pub fn lock(&self, kind: LockKind, operation: &str) -> RepoResult<RepoLock> {
        self.lock_waiting(kind, operation, lock_wait_from_env())
    }

    /// [`Repo::lock`] with an explicit wait.
    pub fn lock_waiting(
        &self,
        kind: LockKind,
        operation: &str,
        wait: Duration,
    ) -> RepoResult<RepoLock> {
        RepoLock::acquire(Arc::clone(&self.locks), kind, operation, wait)
    }

    /// Every lock in the repository, Lifeboat's and restic's, with whether it is stale.
    pub fn locks(&self) -> RepoResult<Vec<LockInfo>> {
        Ok(self
            .locks
            .all()?
            .into_iter()
            .map(|(_, info)| info)
            .collect())
    }

    /// Removes stale locks, or every lock with `all`; returns the removed ones.
    pub fn unlock(&self, all: bool) -> RepoResult<Vec<LockInfo>> {
        self.locks.remove(all)
    }

    /// Refuses an operation whose lock is of another repository or too weak.
    pub(crate) fn check_lock(&self, lock: &RepoLock, needs: LockKind) -> RepoResult<()> {
        if !lock.covers(&self.locks, needs) {
            return Err(RepoError::Backend {
                action: "lock".to_owned(),
                name: self.config.name.clone(),
                detail: format!("this operation needs a {needs:?} lock of this repository"),
            });
        }
        Ok(())
    }

    /// A fresh handle on the same repository, opened with the cached key.
    pub(crate) fn reopen(&self) -> RepoResult<Repository<OpenStatus>> {
        new_repository(&self.config, &self.progress)?
            .open(&Credentials::Masterkey(self.key.clone()))
            .map_err(|e| self.err("open", &e))
    }

    fn exists_raw(repo: &Repository<()>, config: &RepoConfig) -> RepoResult<bool> {
        repo.config_id()
            .map(|id| id.is_some())
            .map_err(|err| RepoError::backend("read config", &config.name, &err))
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.config.name
    }

    #[must_use]
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// True when both repositories chunk data the same way, so copies stay deduplicated.
    #[must_use]
    pub fn same_chunker(&self, other: &Self) -> bool {
        self.inner.config().has_same_chunker(other.inner.config())
    }

    pub(crate) fn err(&self, action: &str, err: &rustic_core::RusticError) -> RepoError {
        RepoError::backend(action, &self.config.name, err)
    }

    /// Bytes the repository takes in its store: every file (packs, index, snapshots, keys),
    /// as listed by the backend; no data is read.
    pub fn stored_bytes(&self) -> RepoResult<u64> {
        let infos = self
            .inner
            .infos_files()
            .map_err(|e| self.err("list files", &e))?;
        Ok(infos.repo.iter().map(|f| f.size).sum())
    }

    pub(crate) fn indexed(&self) -> RepoResult<Repository<IndexedFullStatus>> {
        self.reopen()?
            .to_indexed()
            .map_err(|e| self.err("read index", &e))
    }

    pub(crate) fn asset_of(snap: &SnapshotInfo) -> &str {
        snap.asset.as_deref().unwrap_or("-")
    }

    /// The location shown to users.
    #[must_use]
    pub fn location(&self) -> String {
        self.config.location_text()
    }
}
