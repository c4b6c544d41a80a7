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
//! answers).
//!
//! Admission takes a [`Reservation`] before a request runs
//! ([`MemoryBudget::reserve`]): the bytes a new instance declares it needs
//! (its initial memories), taken from the budget at once, so that of many
//! waiters woken by one freed instance only as many pass as fit, and the
//! rest keep waiting and then get 503 with `Retry-After` rather than
//! passing and failing inside the guest. The reservation is handed to the
//! new store's limiter ([`BudgetLimiter::new`]), whose first growths draw
//! on it before the shared budget.

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
    /// Guest memory growths refused so far, for handlers that cannot tell
    /// which store a failure came from (see [`Self::refused_growths`]).
    refused: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            freed: tokio::sync::Notify::new(),
            refused: AtomicU64::new(0),
        })
    }

    /// Half of the memory this process may use: the smaller of the
    /// machine's physical memory (`MemTotal` in `/proc/meminfo`) and the
    /// memory limit of its cgroup (a container's limit), or 8 GiB where
    /// neither can be read.
    pub fn default_limit() -> u64 {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let physical = read("/proc/meminfo").and_then(|text| mem_total(&text));
        let cgroup = read("/proc/self/cgroup").and_then(|text| cgroup_limit(&text, &read));
        match (physical, cgroup) {
            (Some(p), Some(c)) => p.min(c) / 2,
            (Some(one), None) | (None, Some(one)) => one / 2,
            (None, None) => 8 << 30,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held by live instances.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// How many guest memory growths this budget has refused (not counting
    /// refusals at admission). A handler that sees it rise while a request
    /// failed answers 503, as for a store it knows was refused.
    pub fn refused_growths(&self) -> u64 {
        self.refused.load(Ordering::Acquire)
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

    /// Takes `bytes` now if they fit.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        self.try_take(bytes).then(|| Reservation {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Takes `bytes`, waiting up to `max_wait` for them to be freed; `None`
    /// if they never fit. Cancel-safe: a dropped wait takes nothing.
    pub async fn reserve(self: &Arc<Self>, bytes: u64, max_wait: Duration) -> Option<Reservation> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let freed = self.freed.notified();
            if let Some(r) = self.try_reserve(bytes) {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_reserve(bytes);
            }
        }
    }
}

/// What admission reserves for a request when a component's memories
/// cannot be read from it (2 MiB: the vector service starts with 1.1 MiB).
pub const DEFAULT_INSTANCE_RESERVE: u64 = 2 << 20;

/// The bytes a new instance of `component` takes before it runs: each of
/// its memories at its declared initial size (bounded by the largest, the
/// figure Wasmtime gives), or [`DEFAULT_INSTANCE_RESERVE`] where Wasmtime
/// cannot tell.
pub fn instance_reserve(component: &wasmtime::component::Component) -> u64 {
    match component.resources_required() {
        Some(r) => reserve_for(r.num_memories, r.max_initial_memory_size),
        None => DEFAULT_INSTANCE_RESERVE,
    }
}

/// `memories` memories of at most `max_initial_pages` 64 KiB pages each.
fn reserve_for(memories: u32, max_initial_pages: Option<u64>) -> u64 {
    u64::from(memories).saturating_mul(max_initial_pages.unwrap_or(0).saturating_mul(64 << 10))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Limits at or above this are "no limit" (cgroup v1 writes the largest
/// page-aligned `i64` when none is set).
const NO_CGROUP_LIMIT: u64 = 1 << 60;

/// The memory limit of this process's cgroup, from `/proc/self/cgroup`'s
/// text and a reader of cgroupfs files: v2 (`0::PATH` → `memory.max`) or
/// v1 (`N:memory:PATH` → `memory.limit_in_bytes`), looked up at the
/// process's own path and, for a container that sees its cgroup as the
/// root, at the mount's root. `None` where no limit is set.
fn cgroup_limit(proc_self_cgroup: &str, read: &dyn Fn(&str) -> Option<String>) -> Option<u64> {
    let parse = |text: String| -> Option<u64> {
        let text = text.trim();
        if text == "max" {
            return None;
        }
        text.parse::<u64>().ok().filter(|&l| l < NO_CGROUP_LIMIT)
    };
    let mut candidates = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
            candidates.push("/sys/fs/cgroup/memory.max".to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            candidates.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
            candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string());
        }
    }
    candidates
        .into_iter()
        .find_map(|c| read(&c).and_then(parse))
}

/// Bytes taken from the budget for a request that has not made its
/// instance yet; given back when dropped, unless handed to a store's
/// limiter ([`BudgetLimiter::new`]) first.
#[must_use = "dropping a reservation gives its bytes back at once"]
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// The reserved bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether this reservation was taken from `budget`.
    fn is_from(&self, budget: &Arc<MemoryBudget>) -> bool {
        Arc::ptr_eq(&self.budget, budget)
    }

    /// The bytes, now owned by the caller (who must give them back).
    fn take(mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
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
    /// Reserved bytes not yet drawn on by a growth (already in `held`).
    credit: u64,
    /// The last growth's draw: (from the shared budget, from the credit).
    pending: (u64, u64),
    /// Set when the shared budget refused a growth.
    refused: Arc<std::sync::atomic::AtomicBool>,
}

/// Gives a store's share of the budget back when dropped.
#[must_use = "dropping the lease returns the budget at once"]
pub struct BudgetLease {
    budget: Option<Arc<MemoryBudget>>,
    held: Arc<AtomicU64>,
    refused: Arc<std::sync::atomic::AtomicBool>,
}

impl BudgetLease {
    /// A flag that is set once the shared budget refuses one of the store's
    /// growths (not its own per-memory cap): a failure that follows is the
    /// host's lack of room, not the guest's fault.
    pub fn refusals(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.refused)
    }
}

impl BudgetLimiter {
    /// Limits `inner`, drawing first on `reservation` (taken from
    /// `budget` at admission) and then on `budget` itself; the lease
    /// returns what was drawn and what is left of the reservation. A
    /// reservation from another budget, or without one, is given back.
    pub fn new(
        inner: StoreLimits,
        budget: Option<Arc<MemoryBudget>>,
        reservation: Option<Reservation>,
    ) -> (Self, BudgetLease) {
        let credit = match (&budget, reservation) {
            (Some(b), Some(r)) if r.is_from(b) => r.take(),
            _ => 0,
        };
        let held = Arc::new(AtomicU64::new(credit));
        let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lease = BudgetLease {
            budget: budget.clone(),
            held: Arc::clone(&held),
            refused: Arc::clone(&refused),
        };
        let limiter = Self {
            inner,
            budget,
            held,
            credit,
            pending: (0, 0),
            refused,
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
        let from_credit = delta.min(self.credit);
        let from_budget = delta - from_credit;
        if !budget.try_take(from_budget) {
            tracing::warn!(
                "memory budget: refused a guest memory growth to {desired} bytes \
                 ({} of {} bytes in use; --memory-budget)",
                budget.used(),
                budget.limit()
            );
            self.refused.store(true, Ordering::Release);
            budget.refused.fetch_add(1, Ordering::AcqRel);
            return Ok(false);
        }
        self.credit -= from_credit;
        self.held.fetch_add(from_budget, Ordering::AcqRel);
        self.pending = (from_budget, from_credit);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        let (from_budget, from_credit) = std::mem::take(&mut self.pending);
        if let Some(budget) = &self.budget {
            budget.give_back(from_budget);
            self.held.fetch_sub(from_budget, Ordering::AcqRel);
            self.credit += from_credit;
        }
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
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)), None);
        let (mut b, lease_b) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)), None);
        assert!(a.memory_growing(0, 6 << 20, None).unwrap());
        assert_eq!(budget.used(), 6 << 20);
        // b cannot take what a holds, and its lease says the budget refused.
        assert!(!lease_b.refusals().load(Ordering::Acquire));
        assert!(!b.memory_growing(0, 6 << 20, None).unwrap());
        assert!(lease_b.refusals().load(Ordering::Acquire));
        assert!(!lease_a.refusals().load(Ordering::Acquire));
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
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)), None);
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
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)), None);
        assert!(a.memory_growing(0, 4 << 20, None).unwrap());
        assert!(budget
            .reserve(1 << 20, Duration::from_millis(20))
            .await
            .is_none());
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move {
                budget
                    .reserve(1 << 20, Duration::from_secs(5))
                    .await
                    .map(|r| r.bytes())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        drop(lease_a);
        assert_eq!(waiter.await.unwrap(), Some(1 << 20));
        // The waiter's reservation was dropped with its task.
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_freed_instance_admits_only_as_many_waiters_as_fit() {
        // Room for two reservations once the holder goes; four wait. Before
        // reservations, every woken waiter saw room and all four passed.
        let budget = MemoryBudget::new(4 << 20);
        let holder = budget.try_reserve(4 << 20).unwrap();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let budget = Arc::clone(&budget);
                tokio::spawn(
                    async move { budget.reserve(2 << 20, Duration::from_millis(300)).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(holder);
        let mut passed = Vec::new();
        for w in waiters {
            if let Some(r) = w.await.unwrap() {
                passed.push(r);
            }
        }
        assert_eq!(passed.len(), 2);
        assert_eq!(budget.used(), 4 << 20);
        drop(passed);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_takes_nothing() {
        let budget = MemoryBudget::new(1 << 20);
        let holder = budget.try_reserve(1 << 20).unwrap();
        let wait = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.reserve(1 << 20, Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        wait.abort();
        let _ = wait.await;
        drop(holder);
        assert_eq!(budget.used(), 0);
        assert!(budget.try_reserve(1 << 20).is_some());
    }

    #[test]
    fn growth_draws_on_the_reservation_first() {
        let budget = MemoryBudget::new(10 << 20);
        let reservation = budget.try_reserve(2 << 20).unwrap();
        let (mut a, lease) = BudgetLimiter::new(
            StoreLimits::default(),
            Some(Arc::clone(&budget)),
            Some(reservation),
        );
        assert_eq!(budget.used(), 2 << 20);
        // The first 2 MiB come from the reservation: nothing more is taken.
        assert!(a.memory_growing(0, 1 << 20, None).unwrap());
        assert!(a.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert_eq!(budget.used(), 2 << 20);
        // Past it, the shared budget.
        assert!(a.memory_growing(2 << 20, 5 << 20, None).unwrap());
        assert_eq!(budget.used(), 5 << 20);
        // A failed growth puts back both parts.
        a.memory_grow_failed(wasmtime::Error::msg("mmap failed"))
            .unwrap();
        assert_eq!(budget.used(), 2 << 20);
        drop(a);
        drop(lease);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn an_unused_reservation_is_returned_with_the_lease() {
        let budget = MemoryBudget::new(10 << 20);
        let r = budget.try_reserve(3 << 20).unwrap();
        let (a, lease) =
            BudgetLimiter::new(StoreLimits::default(), Some(Arc::clone(&budget)), Some(r));
        drop(a);
        assert_eq!(budget.used(), 3 << 20);
        drop(lease);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn default_is_half_of_physical_memory_at_most() {
        let limit = MemoryBudget::default_limit();
        assert!(limit >= 64 << 20, "{limit}");
        let physical = mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap()).unwrap();
        assert!(limit <= physical / 2, "{limit} > half of {physical}");
    }

    #[test]
    fn the_reserve_is_every_memory_at_the_largest_initial_size() {
        assert_eq!(reserve_for(2, Some(17)), 2 * 17 * 65536);
        assert_eq!(reserve_for(0, None), 0);
        assert_eq!(reserve_for(3, Some(u64::MAX)), u64::MAX);
    }

    fn files(entries: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |path| map.get(path).cloned()
    }

    #[test]
    fn cgroup_v2_limit_at_the_process_path_or_the_root() {
        let read = files(&[("/sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n")]);
        assert_eq!(cgroup_limit("0::/kubepods/pod1\n", &read), Some(512 << 20));
        let read = files(&[("/sys/fs/cgroup/memory.max", "1073741824\n")]);
        assert_eq!(cgroup_limit("0::/\n", &read), Some(1 << 30));
        let read = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_limit("0::/\n", &read), None);
    }

    #[test]
    fn cgroup_v1_limit_and_its_no_limit_value() {
        let text = "4:memory:/docker/abc\n3:cpuset:/\n0::/\n";
        let read = files(&[(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "268435456",
        )]);
        assert_eq!(cgroup_limit(text, &read), Some(256 << 20));
        let read = files(&[(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "9223372036854771712",
        )]);
        assert_eq!(cgroup_limit(text, &read), None);
        assert_eq!(cgroup_limit(text, &files(&[])), None);
    }
}
