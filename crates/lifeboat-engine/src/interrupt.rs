//! What an interrupt (Ctrl-C, SIGTERM) may and may not cut short.

use std::sync::{Mutex, MutexGuard};

/// Held while a restore swaps paths into place: between moving the old content aside and
/// moving the new one in, the target path does not exist, so an interrupt waits for the end.
static SWAPPING: Mutex<()> = Mutex::new(());

pub(crate) fn swapping() -> MutexGuard<'static, ()> {
    SWAPPING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Undo = Box<dyn FnOnce() + Send>;

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether an interrupt is being handled: the job's own error (a killed child) is then not the
/// outcome, the interrupt handler's exit is.
#[must_use]
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Work to undo if the process is interrupted (e.g. drop a scratch database being loaded).
static CLEANUPS: Mutex<Vec<(u64, Undo)>> = Mutex::new(Vec::new());

/// Runs `undo` if Lifeboat is interrupted while the returned guard lives; dropping the guard
/// forgets it (the normal path cleans up by itself).
pub(crate) fn undo_on_interrupt(undo: impl FnOnce() + Send + 'static) -> UndoGuard {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CLEANUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((id, Box::new(undo)));
    UndoGuard(id)
}

pub(crate) struct UndoGuard(u64);

impl Drop for UndoGuard {
    fn drop(&mut self) {
        CLEANUPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(id, _)| *id != self.0);
    }
}

/// Prepares the process to exit on an interrupt: waits for a swap in progress to finish, then
/// stops every child process Lifeboat started. The caller exits with code 130 afterwards.
///
/// A backup cut short leaves no snapshot (the snapshot file is written last) and a spool file
/// that the next backup removes; a restore cut short before its swap leaves the target as it
/// was, with a `.lifeboat-restore-*` staging directory beside it; a database being loaded for
/// a restore is dropped.
pub fn on_interrupt() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    let guard = swapping();
    lifeboat_sources::process::kill_all();
    crate::sandbox::stop_all();
    let pending = std::mem::take(
        &mut *CLEANUPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (_, undo) in pending {
        undo();
    }
    // Last: the undo steps above may still read the repository.
    lifeboat_repo::release_all_locks();
    // Keep the lock: no swap may start while the process exits.
    std::mem::forget(guard);
}
