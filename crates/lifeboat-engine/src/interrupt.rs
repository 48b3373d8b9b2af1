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

/// Prepares the process to exit on an interrupt: waits for a swap in progress to finish, then
/// stops every child process Lifeboat started. The caller exits with code 130 afterwards.
///
/// A backup cut short leaves no snapshot (the snapshot file is written last) and a spool file
/// that the next backup removes; a restore cut short before its swap leaves the target as it
/// was, with a `.lifeboat-restore-*` staging directory beside it.
pub fn on_interrupt() {
    let guard = swapping();
    lifeboat_sources::process::kill_all();
    crate::sandbox::stop_all();
    // Keep the lock: no swap may start while the process exits.
    std::mem::forget(guard);
}
