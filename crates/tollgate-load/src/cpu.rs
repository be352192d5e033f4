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
    stat("/proc/self/stat")
}

/// CPU time of another process's live threads, in nanoseconds' precision (the sum of
/// `/proc/<pid>/task/*/schedstat`).
pub(crate) fn other_process_threads(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .map(|task| schedstat(&task.path().join("schedstat").display().to_string()))
        .sum()
}

/// The calling thread's ID, as `/proc/self/task/<tid>` names it.
pub(crate) fn current_tid() -> Option<u32> {
    // The link reads `<pid>/task/<tid>`.
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time of thread `tid` of this process, in nanoseconds' precision.
pub(crate) fn thread(tid: u32) -> Duration {
    schedstat(&format!("/proc/self/task/{tid}/schedstat"))
}

/// `utime` + `stime` of a `/proc/…/stat` file.
fn stat(path: &str) -> Duration {
    std::fs::read_to_string(path)
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

/// Time thread `tid` of this process spent runnable but waiting for a CPU (the second field of
/// its schedstat): how much other work on the machine took from it.
pub(crate) fn thread_waited(tid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn schedstat(path: &str) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The one-minute load average, as `/proc/loadavg` writes it (`?` when unreadable).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| String::from("?"))
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
