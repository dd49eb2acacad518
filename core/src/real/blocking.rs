//! Blocking calls run off the async workers, with a bound on how many are in flight (issue 6
//! defect 15). A call that hangs (a dead mount, a `/proc` read behind a locked memory map)
//! holds its thread until the kernel lets go; past the bound a call fails at once with EAGAIN
//! instead of piling threads onto what hangs. Inside tokio a call takes a thread of its
//! blocking pool; outside, a thread of its own.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::platform::BoxFuture;

/// How many blocking calls may be in flight at once, and how many are.
pub(crate) struct Bound {
    in_flight: AtomicUsize,
    max: usize,
}

impl Bound {
    /// A bound of `max` calls in flight (at least 1).
    pub(crate) fn new(max: usize) -> Arc<Bound> {
        Arc::new(Bound {
            in_flight: AtomicUsize::new(0),
            max: max.max(1),
        })
    }

    /// Run `job` off the async worker on a thread named `name` (outside tokio); EAGAIN when
    /// the bound is reached. The slot is freed when `job` returns, not when the caller gives up.
    pub(crate) fn run<T, F>(self: &Arc<Self>, name: &'static str, job: F) -> BoxFuture<'static, io::Result<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let bound = self.clone();
        Box::pin(async move {
            let slot = InFlight::take(&bound)?;
            let job = move || {
                let _slot = slot;
                job()
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => runtime.spawn_blocking(job).await.map_err(io::Error::other)?,
                Err(_) => {
                    let (tx, rx) = futures::channel::oneshot::channel();
                    std::thread::Builder::new().name(name.into()).spawn(move || {
                        let _ = tx.send(job());
                    })?;
                    rx.await
                        .map_err(|_| io::Error::other(format!("{name} thread ended without an answer")))?
                }
            }
        })
    }
}

/// One slot of the bound, given back on drop.
struct InFlight(Arc<Bound>);

impl InFlight {
    fn take(bound: &Arc<Bound>) -> io::Result<InFlight> {
        let taken = bound
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < bound.max).then_some(n + 1));
        match taken {
            Ok(_) => Ok(InFlight(bound.clone())),
            Err(_) => Err(io::Error::from_raw_os_error(libc::EAGAIN)),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "in-flight count below zero");
    }
}
