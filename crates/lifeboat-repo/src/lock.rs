//! Repository locks in restic's format, so that Lifeboat and restic honour each other's.
//!
//! A lock is a small encrypted JSON file under `locks/`, named by the SHA-256 of its bytes, as
//! restic writes them. The rule (docs/locking.md): writers that only add data (backup, copy
//! into a repository, restore, dump) hold a *shared* lock; anything that deletes (forget,
//! prune) or judges the whole repository (check) holds an *exclusive* one. A shared lock waits
//! for exclusive ones; an exclusive lock waits for every other. A lock is stale, and ignored,
//! when it was not refreshed for 30 minutes, or when its process on this host is gone. Held
//! locks are refreshed every 5 minutes.
//!
//! Acquiring is "check, write, check again": two processes that write at the same moment both
//! see the other and both step back (with jitter) instead of both going ahead.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use aes256ctr_poly1305aes::{
    Aes256CtrPoly1305Aes,
    aead::{AeadInPlace, generic_array::GenericArray},
};
use jiff::Timestamp;
use rand::{Rng, RngCore};
use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{RepoError, RepoResult};

/// A lock nobody refreshed for this long is stale (restic's rule).
const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Held locks are rewritten this often (restic's interval).
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// How long to wait for another process's lock unless `LIFEBOAT_LOCK_WAIT` says otherwise.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10 * 60);
/// Overrides [`DEFAULT_LOCK_WAIT`], as a duration such as `30s` or `1h`.
pub const LOCK_WAIT_ENV: &str = "LIFEBOAT_LOCK_WAIT";

/// How long to wait for a lock: `$LIFEBOAT_LOCK_WAIT` when set and valid, else 10 minutes.
#[must_use]
pub fn lock_wait_from_env() -> Duration {
    std::env::var(LOCK_WAIT_ENV)
        .ok()
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .unwrap_or(DEFAULT_LOCK_WAIT)
}

/// Shared for adding data and reading, exclusive for deleting and checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// A lock file's content. restic's fields, plus `operation` (restic ignores unknown fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub time: String,
    pub exclusive: bool,
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    pub pid: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

impl LockInfo {
    fn new(kind: LockKind, operation: &str) -> Self {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()));
        Self {
            time: Timestamp::now().to_string(),
            exclusive: kind == LockKind::Exclusive,
            hostname: hostname(),
            username: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| uid.to_string()),
            pid: std::process::id(),
            uid,
            gid,
            operation: Some(operation.to_owned()),
        }
    }

    fn age(&self) -> Option<Duration> {
        let time: Timestamp = self.time.parse().ok()?;
        let secs = Timestamp::now().as_second() - time.as_second();
        Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    }

    /// True for a lock nobody holds any more: not refreshed for 30 minutes, or held by a
    /// process of this host that no longer runs.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        if self.age().is_none_or(|age| age > STALE_AFTER) {
            return true;
        }
        self.hostname == hostname() && !PathBuf::from(format!("/proc/{}", self.pid)).exists()
    }

    /// "prune (exclusive) by root on host db1, pid 4242, since 2026-11-22T05:10:00Z"
    #[must_use]
    pub fn describe(&self) -> String {
        let what = self.operation.as_deref().unwrap_or("restic");
        let kind = if self.exclusive {
            "exclusive"
        } else {
            "shared"
        };
        format!(
            "{what} ({kind}) by {} on host {}, pid {}, since {}",
            self.username, self.hostname, self.pid, self.time
        )
    }
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Where lock files live: a local directory or the `locks/` prefix of a bucket.
pub(crate) enum LockStore {
    Local(PathBuf),
    Remote(opendal::blocking::Operator),
}

impl LockStore {
    pub(crate) fn local(repo: &std::path::Path) -> Self {
        Self::Local(repo.join("locks"))
    }

    fn list(&self) -> Result<Vec<String>, String> {
        match self {
            Self::Local(dir) => match std::fs::read_dir(dir) {
                Ok(entries) => Ok(entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| is_lock_name(n))
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(format!("list {}: {e}", dir.display())),
            },
            Self::Remote(op) => Ok(op
                .list("locks/")
                .map_err(|e| format!("list locks/: {e}"))?
                .into_iter()
                .map(|e| e.name().to_owned())
                .filter(|n| is_lock_name(n))
                .collect()),
        }
    }

    /// `None` when the file vanished meanwhile (its holder released it).
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Self::Local(dir) => match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("read {}: {e}", dir.join(name).display())),
            },
            Self::Remote(op) => match op.read(&format!("locks/{name}")) {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("read locks/{name}: {e}")),
            },
        }
    }

    fn write(&self, name: &str, bytes: Vec<u8>) -> Result<(), String> {
        match self {
            Self::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("create {}: {e}", dir.display()))?;
                // Written under a temporary name and renamed, so nobody reads half a lock.
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, &bytes)
                    .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
                    .map_err(|e| format!("write {}: {e}", dir.join(name).display()))
            }
            Self::Remote(op) => op
                .write(&format!("locks/{name}"), bytes)
                .map(|_| ())
                .map_err(|e| format!("write locks/{name}: {e}")),
        }
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        match self {
            Self::Local(dir) => match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("remove {}: {e}", dir.join(name).display()))
                }
                _ => Ok(()),
            },
            Self::Remote(op) => op
                .delete(&format!("locks/{name}"))
                .map_err(|e| format!("remove locks/{name}: {e}")),
        }
    }
}

fn is_lock_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// restic's encryption of a repository file: nonce, AES-256-CTR ciphertext, Poly1305-AES tag,
/// with the repository's master key.
struct LockCipher(Aes256CtrPoly1305Aes);

impl LockCipher {
    fn new(key: &MasterKey) -> Self {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&key.encrypt);
        bytes[32..48].copy_from_slice(&key.mac.k);
        bytes[48..].copy_from_slice(&key.mac.r);
        Self(Aes256CtrPoly1305Aes::new(GenericArray::from_slice(&bytes)))
    }

    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .0
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &[], &mut out[16..])
            .expect("a lock file is far below the cipher's length limit");
        out.extend_from_slice(&tag);
        out
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 32 {
            return None;
        }
        let (nonce, rest) = sealed.split_at(16);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let mut plain = body.to_vec();
        self.0
            .decrypt_in_place_detached(
                GenericArray::from_slice(nonce),
                &[],
                &mut plain,
                GenericArray::from_slice(tag),
            )
            .ok()?;
        Some(plain)
    }
}

/// Reads and decrypts the lock files of a repository.
pub(crate) struct Locks {
    repo: String,
    store: LockStore,
    cipher: LockCipher,
}

impl Locks {
    pub(crate) fn new(repo: &str, store: LockStore, key: &MasterKey) -> Self {
        Self {
            repo: repo.to_owned(),
            store,
            cipher: LockCipher::new(key),
        }
    }

    fn err(&self, detail: String) -> RepoError {
        RepoError::Backend {
            action: "lock".to_owned(),
            name: self.repo.clone(),
            detail,
        }
    }

    /// Every readable lock, by file name. Unreadable ones (damaged, or from another
    /// repository's key) are skipped with a warning: they cannot be honoured.
    pub(crate) fn all(&self) -> RepoResult<Vec<(String, LockInfo)>> {
        let mut out = Vec::new();
        for name in self.store.list().map_err(|e| self.err(e))? {
            let Some(bytes) = self.store.read(&name).map_err(|e| self.err(e))? else {
                continue;
            };
            match self
                .cipher
                .open(&bytes)
                .and_then(|plain| parse_lock(&plain))
            {
                Some(info) => out.push((name, info)),
                None => tracing::warn!(
                    "repository {}: lock file {name} cannot be read; ignoring it",
                    self.repo
                ),
            }
        }
        Ok(out)
    }

    /// The encrypted file for `info` and its name.
    fn seal(&self, info: &LockInfo) -> (String, Vec<u8>) {
        let json = serde_json::to_vec(info).expect("a lock serializes");
        let sealed = self.cipher.seal(&json);
        (hex::encode(Sha256::digest(&sealed)), sealed)
    }

    /// The first lock that keeps a `kind` lock from being taken, ignoring `own` and stale ones.
    fn conflict(&self, kind: LockKind, own: Option<&str>) -> RepoResult<Option<LockInfo>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(name, _)| Some(name.as_str()) != own)
            .map(|(_, info)| info)
            .find(|info| !info.is_stale() && (kind == LockKind::Exclusive || info.exclusive)))
    }

    /// Removes stale locks (every lock with `all`); returns what was removed.
    pub(crate) fn remove(&self, all: bool) -> RepoResult<Vec<LockInfo>> {
        let mut removed = Vec::new();
        for (name, info) in self.all()? {
            if all || info.is_stale() {
                self.store.remove(&name).map_err(|e| self.err(e))?;
                removed.push(info);
            }
        }
        Ok(removed)
    }
}

fn parse_lock(plain: &[u8]) -> Option<LockInfo> {
    // restic v2 repositories may store it zstd-compressed behind a version byte 2.
    match plain.first() {
        Some(b'{') => serde_json::from_slice(plain).ok(),
        Some(2) => zstd::decode_all(&plain[1..])
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok()),
        _ => None,
    }
}

/// Locks this process holds, so that an interrupt can remove them before exiting.
type Held = (u64, Arc<Locks>, Arc<Mutex<String>>);
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// Removes every lock this process holds. For an interrupt handler about to exit, when the
/// jobs holding them will not get to drop them.
pub fn release_all_locks() {
    let held = std::mem::take(
        &mut *HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (_, locks, name) in held {
        let name = name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let _ = locks.store.remove(&name);
    }
}

fn register(locks: &Arc<Locks>, name: &Arc<Mutex<String>>) -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((id, Arc::clone(locks), Arc::clone(name)));
    id
}

fn unregister(id: u64) {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|(held, _, _)| *held != id);
}

/// A held lock: refreshed in the background, removed when dropped.
pub struct RepoLock {
    id: u64,
    locks: Arc<Locks>,
    kind: LockKind,
    name: Arc<Mutex<String>>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoLock")
            .field("repo", &self.locks.repo)
            .finish_non_exhaustive()
    }
}

impl RepoLock {
    /// True when this lock is of `locks`' repository and at least as strong as `needs`.
    pub(crate) fn covers(&self, locks: &Arc<Locks>, needs: LockKind) -> bool {
        Arc::ptr_eq(&self.locks, locks) && (needs == LockKind::Shared || self.kind == needs)
    }

    /// The kind this lock was taken as.
    #[must_use]
    pub const fn kind(&self) -> LockKind {
        self.kind
    }

    /// Takes a lock, waiting up to `wait` for conflicting ones to go away.
    pub(crate) fn acquire(
        locks: Arc<Locks>,
        kind: LockKind,
        operation: &str,
        wait: Duration,
    ) -> RepoResult<Self> {
        let start = Instant::now();
        let mut told = false;
        let mut pause = Duration::from_millis(200);
        loop {
            let holder = match locks.conflict(kind, None)? {
                Some(holder) => Some(holder),
                None => {
                    let (name, sealed) = locks.seal(&LockInfo::new(kind, operation));
                    // Known to the interrupt handler before the file exists, and written
                    // under the slot's mutex, which the handler takes too: an interrupt
                    // never leaves this lock behind.
                    let slot = Arc::new(Mutex::new(name.clone()));
                    let id = register(&locks, &slot);
                    let written = {
                        let _writing = slot
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        locks.store.write(&name, sealed)
                    };
                    if let Err(e) = written {
                        unregister(id);
                        return Err(locks.err(e));
                    }
                    match locks.conflict(kind, Some(&name)) {
                        Ok(None) => {
                            return Ok(Self::hold(locks, id, slot, kind, operation.to_owned()));
                        }
                        other => {
                            // Someone wrote at the same moment (or the check failed): step
                            // back, and try again or give up.
                            let removed = locks.store.remove(&name);
                            unregister(id);
                            removed.map_err(|e| locks.err(e))?;
                            other?
                        }
                    }
                }
            };
            let Some(holder) = holder else { continue };
            if start.elapsed() >= wait {
                return Err(RepoError::Locked {
                    name: locks.repo.clone(),
                    holder: holder.describe(),
                    waited_secs: wait.as_secs(),
                });
            }
            if !told {
                tracing::warn!(
                    "repository {} is locked by {}; waiting up to {}s",
                    locks.repo,
                    holder.describe(),
                    wait.saturating_sub(start.elapsed()).as_secs()
                );
                told = true;
            }
            let jitter = Duration::from_millis(rand::rng().random_range(0..200));
            thread::sleep((pause + jitter).min(wait.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    fn hold(
        locks: Arc<Locks>,
        id: u64,
        name: Arc<Mutex<String>>,
        kind: LockKind,
        operation: String,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let refresher = {
            let locks = Arc::clone(&locks);
            let name = Arc::clone(&name);
            thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH_EVERY)
                {
                    // A new file first, then the old one away: never a moment without a lock.
                    let (new, sealed) = locks.seal(&LockInfo::new(kind, &operation));
                    let mut current = name
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match locks.store.write(&new, sealed) {
                        Ok(()) => {
                            let old = std::mem::replace(&mut *current, new);
                            if let Err(e) = locks.store.remove(&old) {
                                tracing::warn!("repository {}: {e}", locks.repo);
                            }
                        }
                        Err(e) => tracing::warn!("repository {}: refresh lock: {e}", locks.repo),
                    }
                }
            })
        };
        Self {
            id,
            locks,
            kind,
            name,
            stop: Some(stop),
            refresher: Some(refresher),
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        unregister(self.id);
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let name = self
            .name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Err(e) = self.locks.store.remove(&name) {
            tracing::warn!("repository {}: {e}", self.locks.repo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks(dir: &std::path::Path) -> Arc<Locks> {
        Arc::new(Locks::new("test", LockStore::local(dir), &MasterKey::new()))
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let l = locks(dir.path());
        let a = RepoLock::acquire(Arc::clone(&l), LockKind::Shared, "backup a", Duration::ZERO)
            .unwrap();
        let b = RepoLock::acquire(Arc::clone(&l), LockKind::Shared, "backup b", Duration::ZERO)
            .unwrap();
        assert_eq!(l.all().unwrap().len(), 2);
        let err = RepoLock::acquire(Arc::clone(&l), LockKind::Exclusive, "prune", Duration::ZERO)
            .unwrap_err();
        assert!(err.to_string().contains("backup"), "{err}");
        drop(a);
        drop(b);
        assert!(l.all().unwrap().is_empty());
        let _p = RepoLock::acquire(Arc::clone(&l), LockKind::Exclusive, "prune", Duration::ZERO)
            .unwrap();
        assert!(
            RepoLock::acquire(Arc::clone(&l), LockKind::Shared, "backup", Duration::ZERO).is_err()
        );
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_stale() {
        let mut info = LockInfo::new(LockKind::Exclusive, "prune");
        assert!(!info.is_stale());
        info.pid = u32::MAX - 1;
        assert!(info.is_stale());
        let mut old = LockInfo::new(LockKind::Exclusive, "prune");
        old.time = "2020-01-01T00:00:00Z".to_owned();
        assert!(old.is_stale());
    }

    #[test]
    fn waits_until_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let l = locks(dir.path());
        let held = RepoLock::acquire(Arc::clone(&l), LockKind::Exclusive, "prune", Duration::ZERO)
            .unwrap();
        let waiter = {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                RepoLock::acquire(l, LockKind::Shared, "backup", Duration::from_secs(60)).is_ok()
            })
        };
        thread::sleep(Duration::from_millis(500));
        drop(held);
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn sealed_locks_open_only_with_their_key() {
        let key = MasterKey::new();
        let sealed = LockCipher::new(&key).seal(b"{\"a\":1}");
        assert_eq!(
            LockCipher::new(&key).open(&sealed).unwrap(),
            b"{\"a\":1}".to_vec()
        );
        assert!(LockCipher::new(&MasterKey::new()).open(&sealed).is_none());
    }
}
