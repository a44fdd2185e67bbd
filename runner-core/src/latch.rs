//! The one-shot latch behind [`shutdown_requested()`](crate::shutdown_requested) and
//! [`interrupted()`](crate::interrupted): fired once (until reset), waited on by any number of
//! futures, each remembering its waker's slot between polls.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll, Waker};

use slab::Slab;

use crate::lock::lock;

/// A one-shot broadcast that any number of futures can wait on.
pub(crate) struct Latch {
    fired: AtomicBool,
    wakers: Mutex<Slab<Waker>>,
}

impl Latch {
    pub(crate) fn new() -> Self {
        Latch {
            fired: AtomicBool::new(false),
            wakers: Mutex::new(Slab::new()),
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    pub(crate) fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        // Taken whole, woken outside the lock: no list to collect, and nothing to take when
        // nobody waited (close's latch, mostly).
        let wakers = {
            let mut wakers = lock(&self.wakers);
            if wakers.is_empty() {
                return;
            }
            std::mem::take(&mut *wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    pub(crate) fn reset(&self) {
        self.fired.store(false, Ordering::Release);
    }

    /// Polls for the signal; `key` remembers this waiter's slot between polls.
    pub(crate) fn poll(&self, key: &mut Option<usize>, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.is_fired() {
            return Poll::Ready(());
        }
        let mut wakers = lock(&self.wakers);
        match key.and_then(|k| wakers.get_mut(k)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => *key = Some(wakers.insert(cx.waker().clone())),
        }
        drop(wakers);
        // `fire` sets the flag before draining: checking again after registering cannot miss it.
        if self.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub(crate) fn forget(&self, key: Option<usize>) {
        if let Some(k) = key {
            let mut wakers = lock(&self.wakers);
            if wakers.contains(k) {
                wakers.remove(k);
            }
        }
    }
}

/// Waits on one of `owner`'s latches, chosen by `latch`; forgets its waker when dropped.
pub(crate) struct LatchWait<O> {
    owner: Arc<O>,
    key: Option<usize>,
    latch: fn(&O) -> &Latch,
}

impl<O> LatchWait<O> {
    pub(crate) fn new(owner: Arc<O>, latch: fn(&O) -> &Latch) -> Self {
        LatchWait {
            owner,
            key: None,
            latch,
        }
    }
}

impl<O> Future for LatchWait<O> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let this = &mut *self;
        (this.latch)(&this.owner).poll(&mut this.key, cx)
    }
}

impl<O> Drop for LatchWait<O> {
    fn drop(&mut self) {
        (self.latch)(&self.owner).forget(self.key.take());
    }
}
