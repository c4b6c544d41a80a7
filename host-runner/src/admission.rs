//! Admission control: at most N requests run at once; up to Q more wait, each
//! for at most T, and the rest are answered 503 at once. With a memory
//! budget, a request also waits (within the same T) while the budget has no
//! room for another instance.
//!
//! `wasmtime serve --max-concurrent-requests` lets excess requests wait
//! without bound; a bounded queue keeps latency bounded under overload and
//! tells clients to come back (`Retry-After`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::memory_budget::{MemoryBudget, Reservation};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The queue was full.
    #[error("the request queue is full")]
    QueueFull,
    /// The request waited for the whole queue timeout.
    #[error("no request slot became free within the queue timeout")]
    TimedOut,
    /// The memory budget stayed spent for the whole queue timeout.
    #[error("the host's memory budget is spent (--memory-budget)")]
    MemoryBudget,
}

/// An admitted request's slot and its share of the memory budget: both are
/// held until this is dropped, which the handler does when the guest ends.
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    reservation: Option<Reservation>,
}

impl Admitted {
    /// The memory reserved for a new instance, for its store's limiter to
    /// draw on; `None` once taken, or without a budget.
    pub fn take_reservation(&mut self) -> Option<Reservation> {
        self.reservation.take()
    }
}

/// The concurrency limit and its bounded queue.
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
    budget: Option<(Arc<MemoryBudget>, u64)>,
}

/// One place in the queue, given up when dropped: when the wait ends, and
/// equally when the request's future is dropped mid-wait (a client that
/// gives up while queued), so the count never drifts.
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// `concurrent` slots, `max_waiting` queue places, `max_wait` per wait.
    pub fn new(concurrent: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
            budget: None,
        }
    }

    /// The memory budget requests reserve from, if any.
    pub fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.budget.as_ref().map(|(budget, _)| budget)
    }

    /// Also reserves `reserve` bytes of `budget` for each request before
    /// admitting it, waiting (within the queue timeout) while they do not fit.
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>, reserve: u64) -> Self {
        self.budget = Some((budget, reserve));
        self
    }

    /// Requests currently waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a slot and the memory reservation, within the queue's
    /// bounds. Cancel-safe: dropping the future gives back whatever it held.
    pub async fn admit(&self) -> Result<Admitted, Rejected> {
        let started = tokio::time::Instant::now();
        let slot = self.slot().await?;
        let reservation = match &self.budget {
            None => None,
            Some((budget, reserve)) => match budget.try_reserve(*reserve) {
                Some(r) => Some(r),
                None => {
                    // Already holding a slot: counted as waiting, but not
                    // refused by the queue bound.
                    self.waiting.fetch_add(1, Ordering::AcqRel);
                    let _in_queue = InQueue(&self.waiting);
                    let left = self.max_wait.saturating_sub(started.elapsed());
                    Some(
                        budget
                            .reserve(*reserve, left)
                            .await
                            .ok_or(Rejected::MemoryBudget)?,
                    )
                }
            },
        };
        Ok(Admitted {
            _slot: slot,
            reservation,
        })
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, Rejected> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::QueueFull);
        }
        let _in_queue = InQueue(&self.waiting);
        match tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Rejected::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_queue_then_timeout() {
        let a = Arc::new(Admission::new(1, 1, Duration::from_millis(50)));
        let held = a.admit().await.unwrap();
        // One may wait; it times out because the slot stays taken.
        let waiter = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(a.waiting(), 1);
        // A second waiter finds the queue full.
        assert_eq!(a.admit().await.map(drop), Err(Rejected::QueueFull));
        assert_eq!(waiter.await.unwrap(), Err(Rejected::TimedOut));
        drop(held);
        assert!(a.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_request_that_gives_up_while_queued_leaves_the_queue() {
        // Two places; two clients queue and go away (their futures are
        // dropped, as hyper drops a request's future on disconnect).
        let a = Arc::new(Admission::new(1, 2, Duration::from_secs(60)));
        let held = a.admit().await.unwrap();
        for _ in 0..2 {
            let gone = tokio::spawn({
                let a = Arc::clone(&a);
                async move { a.admit().await.map(drop) }
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
            gone.abort();
            let _ = gone.await;
        }
        assert_eq!(a.waiting(), 0);
        // The queue still has its two places: a third request waits for
        // the slot instead of being refused at once.
        let waiter = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(a.waiting(), 1);
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(a.waiting(), 0);
    }

    #[tokio::test]
    async fn the_budget_reservation_is_held_until_the_request_ends() {
        let budget = MemoryBudget::new(4 << 20);
        let a = Arc::new(
            Admission::new(8, 8, Duration::from_millis(200))
                .with_budget(Arc::clone(&budget), 2 << 20),
        );
        let first = a.admit().await.unwrap();
        let second = a.admit().await.unwrap();
        assert_eq!(budget.used(), 4 << 20);
        // No room: a third waits, then is refused, and leaves the queue.
        assert_eq!(a.admit().await.map(drop), Err(Rejected::MemoryBudget));
        assert_eq!(a.waiting(), 0);
        drop(first);
        let mut third = a.admit().await.unwrap();
        // Taken for a store, the reservation no longer belongs to the ticket.
        let r = third.take_reservation().unwrap();
        drop(third);
        assert_eq!(budget.used(), 4 << 20);
        drop(r);
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_request_that_gives_up_waiting_for_memory_leaves_no_trace() {
        let budget = MemoryBudget::new(2 << 20);
        let a = Arc::new(
            Admission::new(8, 8, Duration::from_secs(60)).with_budget(Arc::clone(&budget), 2 << 20),
        );
        let held = a.admit().await.unwrap();
        let gone = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(a.waiting(), 1);
        gone.abort();
        let _ = gone.await;
        assert_eq!(a.waiting(), 0);
        drop(held);
        assert_eq!(budget.used(), 0);
        // Both the slot and the memory came back.
        assert!(a.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_freed_slot_admits_a_waiter() {
        let a = Arc::new(Admission::new(1, 4, Duration::from_secs(5)));
        let held = a.admit().await.unwrap();
        let waiter = tokio::spawn({
            let a = Arc::clone(&a);
            async move { a.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }
}
