//! [`Child`]: a process started by a test or benchmark that never outlives
//! its owner: killed (SIGKILL) and reaped when dropped, or earlier with
//! [`Child::kill`]. Redis, the registry, HAProxy and Prometheus hold one;
//! [`crate::Server`] stops its process more gently (SIGTERM first), so it
//! keeps its own.

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Child(Option<std::process::Child>);

impl Child {
    /// Takes ownership of `child`.
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// Kills and reaps it now, as a crash or an outage would; then a no-op.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has exited (or was killed here).
    pub fn has_exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `limit` for it to exit and returns its status; past
    /// that, kills and reaps it and returns `None` (as it does when it was
    /// killed here already).
    pub fn wait_for(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while let Some(child) = self.0.as_mut() {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.0 = None;
                    return Some(status);
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => self.kill(),
            }
        }
        None
    }

    /// The process, while it is still owned here.
    pub fn get_mut(&mut self) -> Option<&mut std::process::Child> {
        self.0.as_mut()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn wait_for_returns_the_status_or_kills_at_the_limit() {
        use std::time::{Duration, Instant};
        let quick = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = Child::new(quick).wait_for(Duration::from_secs(10));
        assert_eq!(status.and_then(|s| s.code()), Some(3));

        let slow = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = slow.id();
        let mut child = Child::new(slow);
        let started = Instant::now();
        assert!(child.wait_for(Duration::from_millis(200)).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it waited for the sleep"
        );
        assert!(child.get_mut().is_none(), "killed and given up");
        // Reaped: no process (or zombie) with that pid is our child any more.
        let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(!status.contains(" Z "), "left a zombie: {status}");
    }

    /// The start time (clock ticks after boot) of process `pid`, if it
    /// exists: with the pid, what tells a process from a later one that
    /// reused its pid.
    fn started(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Field 22; the fields after the parenthesised command name.
        let after_name = &stat[stat.rfind(')')? + 2..];
        after_name.split(' ').nth(19)?.parse().ok()
    }

    #[test]
    fn a_dropped_child_is_killed_and_reaped() {
        let mut child = Child::new(Command::new("sleep").arg("60").spawn().unwrap());
        let pid = child.get_mut().unwrap().id();
        let start = started(pid).expect("the child is in /proc");
        assert!(!child.has_exited());
        drop(child);
        // Reaped, so no zombie remains under this pid (a process there now
        // with another start time reused the pid).
        assert_ne!(started(pid), Some(start));
    }

    #[test]
    fn kill_is_idempotent() {
        let mut child = Child::new(Command::new("sleep").arg("60").spawn().unwrap());
        child.kill();
        assert!(child.has_exited());
        child.kill();
        assert!(child.get_mut().is_none());
    }
}
