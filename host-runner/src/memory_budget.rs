//! One memory budget for the whole host: the linear memory of every live
//! instance together, not just each memory on its own.
//!
//! `--max-memory-size` caps one memory; with 1000 concurrent requests at
//! 512 MiB each, that alone would let a few hundred large uploads exhaust
//! the machine. The budget (`--memory-budget`, default half of physical
//! memory) is drawn on by every `memory.grow`, the initial allocation
//! included, through each store's [`BudgetLimiter`], and given back by its
//! [`BudgetLease`] once the store, and with it the memory, is gone. A growth the budget cannot cover fails (the guest
//! sees `memory.grow` return -1, and a Rust guest aborts: a 500 before it
//! answers), and while the budget is spent new requests wait in the
//! admission queue ([`MemoryBudget::wait_for_room`]) and then get 503 with
//! `Retry-After`, instead of the process growing without bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits};

/// The shared budget.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    freed: tokio::sync::Notify,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            freed: tokio::sync::Notify::new(),
        })
    }

    /// Half of the machine's physical memory (`MemTotal` in
    /// `/proc/meminfo`), or 8 GiB where that cannot be read.
    pub fn default_limit() -> u64 {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(8 << 30, |kib| kib * 1024 / 2)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held by live instances.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `bytes` if they fit.
    pub fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives `bytes` back and wakes requests waiting for room.
    pub fn give_back(&self, bytes: u64) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }

    /// Whether a new instance of `reserve` bytes would fit now.
    pub fn has_room(&self, reserve: u64) -> bool {
        self.used().saturating_add(reserve) <= self.limit
    }

    /// Waits up to `max_wait` until `reserve` bytes fit; false if they never did.
    pub async fn wait_for_room(&self, reserve: u64, max_wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let freed = self.freed.notified();
            if self.has_room(reserve) {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.has_room(reserve);
            }
        }
    }
}

/// One store's limits: the per-memory and per-store caps, plus its share
/// of the host's budget.
///
/// The share is returned by the [`BudgetLease`] made with it, not by the
/// limiter: a store drops its data (this limiter) before it frees its
/// instances' memory, so a limiter that gave back on drop would let new
/// growth in while the old pages were still resident. Keep the lease
/// beside the store and drop it after.
pub struct BudgetLimiter {
    inner: StoreLimits,
    budget: Option<Arc<MemoryBudget>>,
    held: Arc<AtomicU64>,
    pending: u64,
}

/// Gives a store's share of the budget back when dropped.
#[must_use = "dropping the lease returns the budget at once"]
pub struct BudgetLease {
    budget: Option<Arc<MemoryBudget>>,
    held: Arc<AtomicU64>,
}

impl BudgetLimiter {
    /// Limits `inner`, drawing on `budget` when there is one; the lease
    /// returns what was drawn.
    pub fn new(inner: StoreLimits, budget: Option<Arc<MemoryBudget>>) -> (Self, BudgetLease) {
        let held = Arc::new(AtomicU64::new(0));
        let lease = BudgetLease {
            budget: budget.clone(),
            held: Arc::clone(&held),
        };
        let limiter = Self {
            inner,
            budget,
            held,
            pending: 0,
        };
        (limiter, lease)
    }
}

impl Drop for BudgetLease {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.held.swap(0, Ordering::AcqRel));
        }
    }
}

impl ResourceLimiter for BudgetLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.inner.memory_growing(current, desired, maximum)? {
            return Ok(false);
        }
        let Some(budget) = &self.budget else {
            return Ok(true);
        };
        let delta = desired.saturating_sub(current) as u64;
        if !budget.try_take(delta) {
            tracing::warn!(
                "memory budget: refused a guest memory growth to {desired} bytes \
                 ({} of {} bytes in use; --memory-budget)",
                budget.used(),
                budget.limit()
            );
            return Ok(false);
        }
        self.held.fetch_add(delta, Ordering::AcqRel);
        self.pending = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        if let Some(budget) = &self.budget {
            budget.give_back(self.pending);
            self.held.fetch_sub(self.pending, Ordering::AcqRel);
        }
        self.pending = 0;
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_draws_on_the_budget_and_drop_returns_it() {
        let budget = MemoryBudget::new(10 << 20);
        let (mut a, lease_a) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)));
        let (mut b, lease_b) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)));
        assert!(a.memory_growing(0, 6 << 20, None).unwrap());
        assert_eq!(budget.used(), 6 << 20);
        // b cannot take what a holds.
        assert!(!b.memory_growing(0, 6 << 20, None).unwrap());
        assert!(b.memory_growing(0, 4 << 20, None).unwrap());
        assert!(!budget.has_room(1));
        drop(a);
        // The limiter alone gives nothing back: its store may still hold
        // the pages.
        assert_eq!(budget.used(), 10 << 20);
        drop(lease_a);
        assert_eq!(budget.used(), 4 << 20);
        assert!(budget.has_room(6 << 20));
        drop(lease_b);
        assert_eq!(budget.used(), 0);
        drop(b);
    }

    #[test]
    fn a_failed_grow_is_given_back() {
        let budget = MemoryBudget::new(10 << 20);
        let (mut a, lease_a) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)));
        assert!(a.memory_growing(0, 1 << 20, None).unwrap());
        assert!(a.memory_growing(1 << 20, 3 << 20, None).unwrap());
        a.memory_grow_failed(wasmtime::Error::msg("mmap failed"))
            .unwrap();
        assert_eq!(budget.used(), 1 << 20);
        drop(lease_a);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn waiters_wake_when_room_is_freed() {
        let budget = MemoryBudget::new(4 << 20);
        let (mut a, lease_a) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)));
        assert!(a.memory_growing(0, 4 << 20, None).unwrap());
        assert!(
            !budget
                .wait_for_room(1 << 20, Duration::from_millis(20))
                .await
        );
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.wait_for_room(1 << 20, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        drop(lease_a);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn default_is_half_of_physical_memory() {
        let limit = MemoryBudget::default_limit();
        assert!(limit >= 256 << 20, "{limit}");
    }
}
