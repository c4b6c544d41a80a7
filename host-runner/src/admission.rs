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

use crate::memory_budget::MemoryBudget;

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

/// The concurrency limit and its bounded queue.
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
    budget: Option<(Arc<MemoryBudget>, u64)>,
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

    /// Also waits for `reserve` bytes of room in `budget` before admitting.
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>, reserve: u64) -> Self {
        self.budget = Some((budget, reserve));
        self
    }

    /// Requests currently waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a slot (and room in the memory budget), within the
    /// queue's bounds.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Rejected> {
        let started = tokio::time::Instant::now();
        let permit = self.slot().await?;
        if let Some((budget, reserve)) = &self.budget {
            if !budget.has_room(*reserve) {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                let left = self.max_wait.saturating_sub(started.elapsed());
                let room = budget.wait_for_room(*reserve, left).await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                if !room {
                    return Err(Rejected::MemoryBudget);
                }
            }
        }
        Ok(permit)
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, Rejected> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected::QueueFull);
        }
        let waited =
            tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
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
