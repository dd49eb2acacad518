//! The in-process owner mutex (SPEC §2): at most one attempt of this process owns a session.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;
use futures::future::{select, Either};

use crate::event::LockEvent;
use crate::file_lock::canonical_transcript;
use crate::mutant::mutant_on;
use crate::platform::Platform;

/// Why taking the owner of a session failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// Another attempt kept the session past the wait's timeout.
    #[error("SessionFileOwnerTimeoutError: {} still owned after {timeout_ms} ms", session.display())]
    Timeout {
        /// The session.
        session: PathBuf,
        /// How long it waited.
        timeout_ms: u64,
    },
    /// The attempt was aborted while it waited.
    #[error("aborted while waiting for the session owner")]
    Aborted,
    /// The session's directory could not be resolved (`realpath`).
    #[error("cannot resolve the directory of {}: {source}", path.display())]
    Io {
        /// The session as given.
        path: PathBuf,
        /// The error, with its errno.
        source: std::io::Error,
    },
}

/// A cloneable abort flag that wakes its waiters.
#[derive(Clone, Default)]
pub struct AbortSignal {
    inner: Arc<(AtomicBool, Event)>,
}

impl AbortSignal {
    /// A signal not aborted yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Abort: every clone sees it, every waiter wakes.
    pub fn abort(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify(usize::MAX);
    }
    /// Whether `abort` was called.
    pub fn is_aborted(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }
    /// Completes once `abort` is called.
    pub async fn aborted(&self) {
        // Bounded by the abort itself: each wake re-checks the flag.
        loop {
            let listener = self.inner.1.listen();
            if self.is_aborted() {
                return;
            }
            listener.await;
        }
    }
}

/// The owner mutex of one process.
pub struct OwnerMutex {
    platform: Platform,
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutant::Mutant>,
    owners: Mutex<HashMap<PathBuf, u64>>,
    released: Event,
    next_attempt: AtomicU64,
}

/// Ownership of one session by one attempt; released explicitly (idempotent) or on drop.
pub struct OwnerGuard {
    mutex: Arc<OwnerMutex>,
    session: PathBuf,
    attempt: u64,
    released: AtomicBool,
}

impl OwnerMutex {
    /// The owner mutex of this process (one per process, shared by every attempt).
    pub fn new(platform: Platform) -> Arc<Self> {
        Arc::new(OwnerMutex {
            platform,
            #[cfg(feature = "mutants")]
            mutant: None,
            owners: Mutex::new(HashMap::new()),
            released: Event::new(),
            next_attempt: AtomicU64::new(1),
        })
    }

    /// The same, with a historical bug switched on.
    #[cfg(feature = "mutants")]
    pub fn with_mutant(platform: Platform, mutant: Option<crate::mutant::Mutant>) -> Arc<Self> {
        Arc::new(OwnerMutex {
            platform,
            mutant,
            owners: Mutex::new(HashMap::new()),
            released: Event::new(),
            next_attempt: AtomicU64::new(1),
        })
    }

    /// The historical bug switched on, if any.
    #[cfg(feature = "mutants")]
    pub fn mutant(&self) -> Option<crate::mutant::Mutant> {
        self.mutant
    }

    /// The key of a session: the transcript with its directory resolved through symlinks,
    /// as its lock path is (SPEC §1), so two paths to one lock file share one owner.
    async fn key(&self, session: &Path) -> Result<PathBuf, OwnerError> {
        if mutant_on!(self, M8OwnerLiteralPath) {
            return Ok(normalize(session));
        }
        canonical_transcript(&*self.platform.fs, session).await.map_err(|source| OwnerError::Io {
            path: session.to_owned(),
            source,
        })
    }

    /// Wait (abortable, at most `timeout_ms`) until no other attempt owns `session`, then own it.
    pub async fn acquire(
        self: &Arc<Self>,
        session: &Path,
        timeout_ms: u64,
        abort: &AbortSignal,
    ) -> Result<OwnerGuard, OwnerError> {
        // The whole wait is abortable, the path's resolution included: a realpath stalled on a
        // slow mount must not hold an aborted turn (swarm seed 66).
        let key = match select(Box::pin(self.key(session)), Box::pin(abort.aborted())).await {
            Either::Left((key, _)) => key?,
            Either::Right(_) => return Err(OwnerError::Aborted),
        };
        let attempt = self.next_attempt.fetch_add(1, Ordering::Relaxed);
        let deadline = self.platform.clock.mono_ms().saturating_add(timeout_ms);
        // Each pass either takes ownership, ends, or sleeps until a release, an abort or the
        // deadline: the number of passes is bounded by the releases that can happen.
        loop {
            let listener = {
                let mut owners = self.owners.lock().unwrap();
                if abort.is_aborted() {
                    return Err(OwnerError::Aborted);
                }
                if !owners.contains_key(&key) {
                    owners.insert(key.clone(), attempt);
                    drop(owners);
                    self.platform.emit(LockEvent::OwnerAcquired {
                        session: &key,
                        attempt,
                    });
                    return Ok(OwnerGuard {
                        mutex: self.clone(),
                        session: key,
                        attempt,
                        released: AtomicBool::new(false),
                    });
                }
                self.released.listen()
            };
            let now = self.platform.clock.mono_ms();
            if now >= deadline {
                return Err(OwnerError::Timeout {
                    session: key,
                    timeout_ms,
                });
            }
            let timer = self.platform.clock.sleep(deadline - now);
            let woken = select(listener, Box::pin(abort.aborted()));
            if let Either::Right(_) = select(Box::pin(woken), timer).await {
                return Err(OwnerError::Timeout {
                    session: key,
                    timeout_ms,
                });
            }
        }
    }

    /// Whether any attempt owns `session`.
    pub async fn is_owned(&self, session: &Path) -> Result<bool, OwnerError> {
        let key = self.key(session).await?;
        Ok(self.owners.lock().unwrap().contains_key(&key))
    }
}

impl OwnerGuard {
    /// The attempt number this guard owns the session for.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// Give up ownership and wake the waiters. Idempotent.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut owners = self.mutex.owners.lock().unwrap();
            if owners.get(&self.session) == Some(&self.attempt) {
                owners.remove(&self.session);
            }
        }
        self.mutex.platform.emit(LockEvent::OwnerReleased {
            session: &self.session,
            attempt: self.attempt,
        });
        self.mutex.released.notify(usize::MAX);
    }
}

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        self.release();
    }
}

/// Lexical normalization (`.` dropped, `..` folded): the key the owner mutex used before it
/// resolved symlinks; only the `m8` mutant still uses it.
#[cfg_attr(not(feature = "mutants"), allow(dead_code))]
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
