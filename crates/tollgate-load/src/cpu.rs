//! CPU time from `/proc`, to tell whether the server core was the bottleneck of a
//! measurement.

use std::time::Duration;

/// CPU time of the calling thread.
pub(crate) fn this_thread() -> Duration {
    schedstat("/proc/thread-self/schedstat")
}

/// CPU time of the whole process, threads that have exited included (`/proc/self/stat`'s
/// `utime` + `stime`, in the kernel's 100 Hz ticks).
pub(crate) fn process() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split_whitespace().skip(11);
            let utime: u64 = fields.next()?.parse().ok()?;
            let stime: u64 = fields.next()?.parse().ok()?;
            Some(Duration::from_millis((utime + stime) * 10))
        })
        .unwrap_or(Duration::ZERO)
}

fn schedstat(path: &str) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Resident memory of the process, from `/proc/self/status`.
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}
