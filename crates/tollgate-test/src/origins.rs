//! The seed origins: the two origin examples of Cloudflare's docs, which tollgate (its gateway
//! included) must serve unchanged, as child processes on 127.0.0.1:0.
//!
//! - [`SeedOrigin::python_cookie`]: Cloudflare's Python example (`origins/cookie_origin.py`,
//!   the standard library's `http.server` and PyJWT): reads the `CF_Authorization` cookie,
//!   fetches the certs document on every request, `jwt.decode(…, audience=AUD,
//!   algorithms=["RS256"], issuer=TEAM_DOMAIN)`; 403 otherwise.
//! - [`SeedOrigin::go_oidc`]: Cloudflare's Go example (`origins/go-oidc/main.go`, go-oidc
//!   v2.1.0 from Debian): verifies `Cf-Access-Jwt-Assertion` with `oidc.NewRemoteKeySet` and
//!   `oidc.NewVerifier(issuer, keySet, &oidc.Config{ClientID: aud})`; 403 otherwise.
//!
//! Both answer a verified request with 200 and a JSON [report](SeedOrigin) of what they saw,
//! and `GET /__count` (outside authentication) with their [`Counts`].
//!
//! `scripts/test-deps.sh` installs them: a venv at `<target>/test-venv` and the Go binary at
//! `<target>/test-origins/go-oidc-origin`, where `<target>` is `$CARGO_TARGET_DIR` or the
//! workspace's `target/`. The harness looks in the target directory the running test binary
//! lives in, then `$CARGO_TARGET_DIR`, then the workspace's `target/`; [`VENV_VAR`] and
//! [`ORIGINS_VAR`] name the places outright. When a seed origin is not installed its
//! constructor prints a loud `SKIPPED:` line and answers `None`; when it is installed but does
//! not start (prints no port within [`START_TIMEOUT`], or exits), it panics with the origin's
//! stderr.
//!
//! ```no_run
//! # async fn example() {
//! use tollgate_test::{JwksServer, keys, origins::SeedOrigin};
//! let jwks = JwksServer::start(vec![keys()[0].jwk()]).await;
//! let Some(origin) = SeedOrigin::python_cookie(&jwks.certs_url(), &jwks.origin, tollgate_test::AUD)
//! else {
//!     return; // SKIPPED: printed
//! };
//! let status = reqwest::get(origin.url()).await.unwrap().status();
//! assert_eq!(status, 403); // no cookie
//! # }
//! ```

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use crate::skipped;

/// The environment variable naming the Python venv (a directory with `bin/python` and PyJWT).
pub const VENV_VAR: &str = "TOLLGATE_TEST_VENV";
/// The environment variable naming the directory holding the built `go-oidc-origin`.
pub const ORIGINS_VAR: &str = "TOLLGATE_TEST_ORIGINS";
/// How long an origin may take to print its port before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test should give a seed origin to answer one request (the Python one fetches the
/// certs on every request).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The Python origin's source, in this crate.
const PYTHON_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/origins/cookie_origin.py");
/// The Go origin's binary, under a target directory.
const GO_BINARY: &str = "test-origins/go-oidc-origin";
/// The venv, under a target directory.
const VENV: &str = "test-venv";

/// Which of Cloudflare's examples a [`SeedOrigin`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedKind {
    /// The Python example: the token comes from the `CF_Authorization` cookie.
    PythonCookie,
    /// The Go example: the token comes from the `Cf-Access-Jwt-Assertion` header.
    GoOidc,
}

impl SeedKind {
    /// The name the skip and failure messages use.
    pub fn name(self) -> &'static str {
        match self {
            SeedKind::PythonCookie => "the Python cookie origin (PyJWT)",
            SeedKind::GoOidc => "the Go origin (go-oidc)",
        }
    }
}

/// What `GET /__count` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Requests that reached the authenticated paths (every path but `/__count`).
    pub requests: u64,
    /// Those of them that verified and were answered 200.
    pub verified: u64,
}

/// A seed origin running as a child process on `127.0.0.1`, killed and reaped when dropped.
///
/// A verified request is answered 200 with a JSON object: `sub`, `common_name` and `email`
/// of the verified claims (`null` when absent), `path` (with the query), `method`,
/// `assertion_present` and `assertion_matches_cookie` (the `Cf-Access-Jwt-Assertion` header
/// and the `CF_Authorization` cookie carry the same token), `header_names` (lowercase, one per
/// header line; in arrival order from Python, sorted from Go, which keeps no order) and
/// `requests` (this request's number). A refusal is 403 with a short text.
///
/// The child's stdin is a pipe held here: if the test process dies without dropping this,
/// the pipe closes and the origin exits by itself.
#[derive(Debug)]
pub struct SeedOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    kind: SeedKind,
    child: Child,
    /// Held open: the origin exits when it closes.
    _stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
}

impl SeedOrigin {
    /// Cloudflare's Python cookie origin verifying against `certs_url`, for tokens issued by
    /// `issuer` to `aud`; or `None` after a `SKIPPED:` line when the venv is missing.
    pub fn python_cookie(certs_url: &str, issuer: &str, aud: &str) -> Option<Self> {
        let venv = find_venv(std::env::var_os(VENV_VAR).map(PathBuf::from))?;
        let mut command = Command::new(venv.join("bin/python"));
        command.arg(PYTHON_SCRIPT).args([
            "--certs-url",
            certs_url,
            "--issuer",
            issuer,
            "--aud",
            aud,
            "--port",
            "0",
            "--exit-on-stdin-eof",
        ]);
        Some(Self::spawn(SeedKind::PythonCookie, command))
    }

    /// Cloudflare's Go go-oidc origin verifying against `certs_url`, for tokens issued by
    /// `issuer` to `aud`; or `None` after a `SKIPPED:` line when the binary is missing.
    pub fn go_oidc(certs_url: &str, issuer: &str, aud: &str) -> Option<Self> {
        let binary = find_go_binary(std::env::var_os(ORIGINS_VAR).map(PathBuf::from))?;
        let mut command = Command::new(binary);
        command.args([
            "-certs-url",
            certs_url,
            "-issuer",
            issuer,
            "-aud",
            aud,
            "-port",
            "0",
            "-exit-on-stdin-eof",
        ]);
        Some(Self::spawn(SeedKind::GoOidc, command))
    }

    /// Which example this is.
    pub fn kind(&self) -> SeedKind {
        self.kind
    }

    /// Its origin, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process ID of the child.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the origin has printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its `GET /__count` (failing the test after [`REQUEST_TIMEOUT`]).
    pub async fn counts(&self) -> Counts {
        let body: Value = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap()
            .get(format!("{}/__count", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let field = |name: &str| {
            body[name]
                .as_u64()
                .unwrap_or_else(|| panic!("/__count without {name}: {body}"))
        };
        Counts {
            requests: field("requests"),
            verified: field("verified"),
        }
    }

    /// Starts `command`, reads the port from its first stdout line; panics with its stderr if
    /// that takes longer than [`START_TIMEOUT`] or the process ends first.
    fn spawn(kind: SeedKind, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut chunk) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (send, first_line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = send.send(lines.next());
            // Keep reading (and dropping) so the origin never blocks on a full pipe.
            for _ in lines {}
        });
        let mut origin = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            kind,
            child,
            _stdin: stdin,
            stderr,
        };
        let port = match first_line.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line.trim().parse::<u16>().ok(),
            _ => None,
        };
        match port {
            Some(port) if port != 0 => {
                origin.addr.set_port(port);
                origin
            }
            _ => {
                let _ = origin.child.kill();
                let status = origin.child.wait();
                // The pipe is closed now: the reader has all the process wrote.
                let _ = stderr_reader.join();
                panic!(
                    "{} printed no port within {START_TIMEOUT:?} ({status:?}); stderr:\n{}",
                    kind.name(),
                    origin.stderr()
                );
            }
        }
    }
}

impl Drop for SeedOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The target directories to look in, most specific first: the one the running binary lives
/// in (`<target>/debug/deps/…`, `<target>/<triple>/debug/deps/…`), `$CARGO_TARGET_DIR`, the
/// workspace's `target/`.
fn target_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    dirs
}

/// The first of `candidates` holding `relative`.
fn find_under(
    candidates: &[PathBuf],
    relative: &str,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    candidates
        .iter()
        .map(|dir| dir.join(relative))
        .find(|path| exists(path))
}

/// The venv named by `explicit`, else the first `test-venv` of [`target_dirs`]; prints the
/// skip line when there is none.
fn find_venv(explicit: Option<PathBuf>) -> Option<PathBuf> {
    locate_venv(explicit)
        .map_err(|why| skip(SeedKind::PythonCookie, &why))
        .ok()
}

/// The Go origin in `explicit`, else the first of [`target_dirs`]; prints the skip line when
/// there is none.
fn find_go_binary(explicit: Option<PathBuf>) -> Option<PathBuf> {
    locate_go_binary(explicit)
        .map_err(|why| skip(SeedKind::GoOidc, &why))
        .ok()
}

/// The venv's `python` when it can import Cloudflare's Python SDK (`cloudflare`, pinned in
/// `origins/requirements.txt`); else `None` after a loud `SKIPPED:` line.
pub fn cloudflare_sdk_python() -> Option<PathBuf> {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(|name| format!("{name}: "))
        .unwrap_or_default();
    let venv = match locate_venv(std::env::var_os(VENV_VAR).map(PathBuf::from)) {
        Ok(venv) => venv,
        Err(why) => {
            skipped(&format!(
                "{test}Cloudflare's Python SDK is not installed ({why}); run scripts/test-deps.sh"
            ));
            return None;
        }
    };
    let python = venv.join("bin/python");
    let imports = Command::new(&python)
        .args(["-c", "import cloudflare"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !imports {
        skipped(&format!(
            "{test}Cloudflare's Python SDK is not in {} (an older venv?); run scripts/test-deps.sh",
            venv.display()
        ));
        return None;
    }
    Some(python)
}

/// Where scripts/test-deps.sh installs Cloudflare's TypeScript SDK, under a target directory.
pub const NODE_SDK: &str = "test-node/node_modules";

/// `node` and the `node_modules` holding Cloudflare's TypeScript SDK (npm `cloudflare`, pinned in
/// `origins/cloudflare-node/package.json`), for a script run with `NODE_PATH` set to it; else
/// `None` after a loud `SKIPPED:` line.
pub fn cloudflare_sdk_node() -> Option<(PathBuf, PathBuf)> {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(|name| format!("{name}: "))
        .unwrap_or_default();
    let has_sdk = |dir: &Path| dir.join("cloudflare/package.json").exists();
    let Some(modules) = find_under(&target_dirs(), NODE_SDK, has_sdk) else {
        skipped(&format!(
            "{test}Cloudflare's TypeScript SDK is not installed (no {NODE_SDK}/cloudflare in {}); \
             run scripts/test-deps.sh",
            shown(&target_dirs())
        ));
        return None;
    };
    let node = PathBuf::from("node");
    let runs = Command::new(&node)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !runs {
        skipped(&format!(
            "{test}no `node` on PATH for Cloudflare's TypeScript SDK"
        ));
        return None;
    }
    Some((node, modules))
}

/// [`find_venv`] without the skip line: `Err` says where it looked.
fn locate_venv(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    let has_python = |venv: &Path| venv.join("bin/python").exists();
    match explicit {
        Some(venv) if has_python(&venv) => Ok(venv),
        Some(venv) => Err(format!(
            "${VENV_VAR} = {} has no bin/python",
            venv.display()
        )),
        None => find_under(&target_dirs(), VENV, has_python)
            .ok_or_else(|| format!("no {VENV}/bin/python in {}", shown(&target_dirs()))),
    }
}

/// [`find_go_binary`] without the skip line: `Err` says where it looked.
fn locate_go_binary(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    match explicit {
        Some(dir) if dir.join("go-oidc-origin").exists() => Ok(dir.join("go-oidc-origin")),
        Some(dir) => Err(format!(
            "${ORIGINS_VAR} = {} has no go-oidc-origin",
            dir.display()
        )),
        None => find_under(&target_dirs(), GO_BINARY, Path::exists)
            .ok_or_else(|| format!("no {GO_BINARY} in {}", shown(&target_dirs()))),
    }
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn skip(kind: SeedKind, why: &str) {
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(|name| format!("{name}: "))
        .unwrap_or_default();
    skipped(&format!(
        "{test}{} is not installed ({why}); run scripts/test-deps.sh",
        kind.name()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_install_is_found_missing_and_says_where_it_looked() {
        let nowhere = PathBuf::from("/nonexistent/tollgate-test-origins");
        let why = locate_venv(Some(nowhere.clone())).unwrap_err();
        assert!(
            why.contains(VENV_VAR) && why.contains("/nonexistent"),
            "{why}"
        );
        let why = locate_go_binary(Some(nowhere)).unwrap_err();
        assert!(
            why.contains(ORIGINS_VAR) && why.contains("/nonexistent"),
            "{why}"
        );
    }

    #[test]
    fn the_target_dir_of_this_binary_is_looked_in_first() {
        let exe = std::env::current_exe().unwrap();
        let dirs = target_dirs();
        assert!(exe.starts_with(&dirs[0]), "{dirs:?}");
        assert!(dirs.last().unwrap().ends_with("../../target"));
    }

    #[test]
    fn an_origin_that_prints_no_port_fails_within_the_timeout() {
        let started = std::time::Instant::now();
        let panic = std::panic::catch_unwind(|| {
            let mut command = Command::new("sh");
            command.args(["-c", "echo broken origin >&2; exit 3"]);
            SeedOrigin::spawn(SeedKind::GoOidc, command)
        })
        .expect_err("a process that prints no port is a failure");
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("printed no port"), "{message}");
        assert!(
            message.contains("broken origin"),
            "the origin's stderr: {message}"
        );
        assert!(started.elapsed() < START_TIMEOUT);
    }
}
