//! Memory given back after a burst. A burst of thousands of commands a second leaves the
//! allocator holding the buffers it freed, in one arena per thread, for the next burst that may
//! not come for days; the bot then sits in its pod at its peak size. Once the requests have
//! stopped for a moment, the freed memory is returned to the system (glibc's `malloc_trim`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long without requests counts as the end of a burst.
const QUIET: Duration = Duration::from_secs(1);

/// Counts requests; `give_back_after_bursts` watches it.
#[derive(Clone, Default)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    pub fn count(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn seen(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs for ever: after each burst, once it has been quiet for `QUIET`, gives memory back.
pub async fn give_back_after_bursts(activity: Activity) {
    let mut every = tokio::time::interval(QUIET);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = activity.seen();
    let mut busy = false;
    loop {
        every.tick().await;
        let now = activity.seen();
        if now != last {
            busy = true;
        } else if busy {
            busy = false;
            give_back();
        }
        last = now;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back() {
    // SAFETY: malloc_trim takes no pointers and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back() {}

/// Resident memory of this process in bytes (`/proc/self/statm`: pages resident × page size),
/// where the system says it.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| pages * page as u64)
}
