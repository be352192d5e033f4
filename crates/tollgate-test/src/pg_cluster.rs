//! A throwaway PostgreSQL server of a test's own, for drills that stop and restart it: `initdb`
//! into a temp dir, `pg_ctl start` on a free loopback port, `pg_ctl stop -m fast|immediate`,
//! and removed (stopped, files deleted) when dropped.
//!
//! The binaries are looked for in `TOLLGATE_TEST_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`. `initdb` refuses to run as root, so as root every PostgreSQL
//! command runs as the `postgres` user through `runuser`, in a directory that user owns.
//! Without the binaries (or, as root, without `runuser` or a `postgres` user),
//! [`PgCluster::start`] prints a loud `SKIPPED:` line and answers `None`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::skipped;

/// The environment variable naming a directory holding `initdb`, `pg_ctl` and `postgres`.
pub const BIN_VAR: &str = "TOLLGATE_TEST_PG_BIN";

/// How `pg_ctl stop` shuts the server down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `-m fast`: clients are disconnected, the server shuts down cleanly.
    Fast,
    /// `-m immediate`: every server process is killed at once; the next start recovers.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL server in a temp dir on `127.0.0.1:<port>`, trust authentication, superuser
/// `postgres`. Stopped (immediately) and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// As root: the user every PostgreSQL command runs as (through `runuser`).
    run_as: Option<String>,
    port: u16,
}

impl PgCluster {
    /// Creates and starts a fresh server, or prints `SKIPPED: … (<what> did not run)` and
    /// answers `None` when this machine cannot run one. Panics if the tools are there but fail.
    pub fn start(what: &str) -> Option<Self> {
        let Some(bin) = find_bin() else {
            skipped(&format!(
                "no PostgreSQL server binaries (initdb, pg_ctl) in ${BIN_VAR} or \
                 /usr/lib/postgresql/*/bin; {what} did not run"
            ));
            return None;
        };
        let run_as = if is_root() {
            if !Path::new("/usr/sbin/runuser").exists() && !on_path("runuser") {
                skipped(&format!(
                    "running as root, and initdb refuses root, but runuser is missing; \
                     {what} did not run"
                ));
                return None;
            }
            let Some((uid, gid)) = user_ids("postgres") else {
                skipped(&format!(
                    "running as root, and initdb refuses root, but there is no `postgres` \
                     user to run it as; {what} did not run"
                ));
                return None;
            };
            Some((uid, gid))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("tollgate-pg-")
            .tempdir()
            .unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let cluster = Self {
            dir,
            bin,
            run_as: run_as.map(|_| "postgres".to_owned()),
            port: 0,
        };
        let data = cluster.data_dir();
        let initdb = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut cluster = cluster;
        // A free port can be taken by someone else between our probe and the server's bind:
        // try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.try_start() {
                return Some(cluster);
            }
        }
        panic!("PostgreSQL did not start: {}", cluster.log());
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m <mode>`, waiting until the server is gone.
    pub fn stop(&self, mode: StopMode) {
        let data = self.data_dir();
        let out = self.run("pg_ctl", &["-D", &data, "-m", mode.as_arg(), "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop -m {} failed: {}",
            mode.as_arg(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the (stopped) server again on the same port, waiting until it accepts
    /// connections.
    pub fn restart(&self) {
        assert!(
            self.try_start(),
            "PostgreSQL did not start again: {}",
            self.log()
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_start(&self) -> bool {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB \
             -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "30", "-o", &options, "start",
            ],
        )
        .status
        .success()
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs `bin/<tool> <args>` (as the PostgreSQL user when we are root).
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let tool = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&tool);
                command
            }
            None => Command::new(&tool),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        if Path::new(&data).join("postmaster.pid").exists() {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn find_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(dir) = std::env::var(BIN_VAR) {
        return Some(PathBuf::from(dir)).filter(|d| has_tools(d));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).exists()))
}

/// The uid and gid of `user`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        std::str::from_utf8(&out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A port nobody listened on a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
