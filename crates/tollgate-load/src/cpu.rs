//! CPU time from `/proc` (`schedstat`: nanoseconds on the CPU), to tell whether the server
//! core was the bottleneck of a measurement.

use std::time::Duration;

/// CPU time of the calling thread.
pub(crate) fn this_thread() -> Duration {
    schedstat("/proc/thread-self/schedstat")
}

/// CPU time of the whole process, every thread.
pub(crate) fn process() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .map(|task| schedstat(&format!("{}/schedstat", task.path().display())))
        .sum()
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
