//! Taking a lock that a panicking thread may have poisoned.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Takes a lock. A thread that panicked while holding it "poisons" the
/// lock. The lessons never panic while holding one, and every change they
/// make under a lock is a single insert, remove or assignment, so what it
/// guards is whole either way: go on with it rather than panic too.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
