//! Graceful shutdown, executor side: one [`Stop`] per executor tells its accept loops and
//! its idle connections to end, and counts the connections still open.
//!
//! The signal thread only sets [`crate::server::Shared::shutdown`]; each executor notices
//! it (a short timer, since a foreign thread cannot wake a glommio task safely here) and
//! calls [`Stop::trigger`] on its own thread. From then on:
//! - accept loops return, dropping their listeners: new connections are refused;
//! - a connection waiting for a request with nothing buffered ends at once (TLS ones send
//!   close_notify); one in the middle of a request reads on until that request is answered,
//!   then ends the same way;
//! - the executor waits until it has no connections left (its shard's `curr_connections`),
//!   or until `shutdown_timeout`.
//!
//! Waiting is one waker slot per registered task, replaced only when the task's waker
//! changes, so the connection's read path pays a flag check and a `will_wake` per poll.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

/// One executor's shutdown state.
#[derive(Debug, Default)]
pub struct Stop {
    stopping: Cell<bool>,
    /// Waker slots, by key; `None` for a free or not yet polled slot.
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Stop {
    /// Whether shutdown has begun on this executor.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Begins shutdown: wakes every registered waiter.
    pub fn trigger(&self) {
        if self.stopping.replace(true) {
            return;
        }
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// A waiter's slot (give it back with [`Stop::unregister`]).
    pub fn register(&self) -> usize {
        if let Some(k) = self.free.borrow_mut().pop() {
            return k;
        }
        let mut slots = self.slots.borrow_mut();
        slots.push(None);
        slots.len() - 1
    }

    /// Frees a slot from [`Stop::register`].
    pub fn unregister(&self, key: usize) {
        if let Some(s) = self.slots.borrow_mut().get_mut(key) {
            *s = None;
            self.free.borrow_mut().push(key);
        }
    }

    /// Completes once shutdown has begun.
    pub fn wait(&self, key: usize) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.stopping.get() {
                return Poll::Ready(());
            }
            if let Some(slot) = self.slots.borrow_mut().get_mut(key) {
                match slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            }
            Poll::Pending
        })
    }

    /// `fut`'s output, or None once shutdown has begun (`key` from [`Stop::register`]).
    pub async fn unless_stopping<T>(&self, key: usize, fut: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(fut.await) }, async {
            self.wait(key).await;
            None
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::Stop;
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn trigger_wakes_each_waiter_once_and_completes_them() {
        let stop = Stop::default();
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let keys: Vec<usize> = (0..3).map(|_| stop.register()).collect();
        let mut futs: Vec<_> = keys.iter().map(|&k| Box::pin(stop.wait(k))).collect();
        for (f, c) in futs.iter_mut().zip(&counts) {
            let waker = Waker::from(c.clone());
            // Polled twice with the same waker: stored once, still pending.
            assert!(
                f.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            assert!(
                f.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        // A freed slot is reused and does not wake its old owner.
        stop.unregister(keys[2]);
        assert_eq!(stop.register(), keys[2]);
        stop.trigger();
        stop.trigger();
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 1);
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 1);
        assert_eq!(counts[2].0.load(Ordering::SeqCst), 0);
        let waker = Waker::from(counts[0].clone());
        assert!(
            futs[0]
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        assert!(stop.stopping());
    }
}
