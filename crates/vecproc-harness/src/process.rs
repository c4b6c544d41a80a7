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
