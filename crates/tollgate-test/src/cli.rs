//! The real `tollgate` binary in a scratch directory with its own SQLite database (or any
//! database URL), and `tollgate serve` as a child process on 127.0.0.1:0.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A scratch directory with its own database, and the binary to run in it.
#[derive(Debug)]
pub struct CliEnv {
    dir: tempfile::TempDir,
    binary: PathBuf,
    /// `TOLLGATE_DATABASE_URL` of every command (a SQLite file in the directory at first).
    pub database: String,
    /// `TOLLGATE_MASTER_KEY` of every command (none at first).
    pub master_key: Option<String>,
}

impl CliEnv {
    /// A fresh directory; commands run `binary` (pass `env!("CARGO_BIN_EXE_tollgate")`).
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        Self {
            dir,
            binary: binary.into(),
            database,
            master_key: None,
        }
    }

    /// The scratch directory (each command's working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The command `tollgate <args>`, with this environment and no log settings inherited.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("TOLLGATE_DATABASE_URL", &self.database)
            .env_remove("TOLLGATE_LOG")
            .env_remove("RUST_LOG");
        match &self.master_key {
            Some(key) => command.env("TOLLGATE_MASTER_KEY", key),
            None => command.env_remove("TOLLGATE_MASTER_KEY"),
        };
        command
    }

    /// Runs a command to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`tollgate {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must succeed; returns its stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Runs a command that must succeed and print a JSON array; returns its length.
    pub fn count(&self, args: &[&str]) -> usize {
        self.json(args).as_array().unwrap().len()
    }

    /// Runs a command that must fail, printing nothing on stdout and exactly one error line on
    /// stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "`tollgate {}` succeeded",
            args.join(" ")
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "one error line expected, got: {stderr}");
        assert!(output.stdout.is_empty(), "nothing on stdout on failure");
        errors[0].to_owned()
    }

    /// Starts `tollgate serve --addr 127.0.0.1:0 <extra>` and waits for its banner.
    pub fn serve(&self, extra: &[&str]) -> ServeProcess {
        self.serve_with_stderr(extra, Stdio::null())
    }

    /// [`serve`](Self::serve) with its log (stderr) written to `log`, a file in [`dir`](Self::dir)
    /// the test reads afterwards (it is gone with the directory).
    pub fn serve_logged(&self, extra: &[&str], log: &str) -> ServeProcess {
        let file = std::fs::File::create(self.dir().join(log)).unwrap();
        self.serve_with_stderr(extra, file.into())
    }

    fn serve_with_stderr(&self, extra: &[&str], stderr: Stdio) -> ServeProcess {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServeProcess {
            child,
            base: String::new(),
            aud: String::new(),
            first_token: None,
            metrics: None,
            admin: None,
        };
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("serve printed its banner");
            if let Some(rest) = line.strip_prefix("tollgate: serving") {
                server.base = rest.rsplit(' ').next().unwrap().to_owned();
                if let Some(aud) = rest.split("(AUD ").nth(1) {
                    server.aud = aud[..64].to_owned();
                }
            }
            if line.trim_start().starts_with("curl -i -c") {
                let header = |name: &str| {
                    let start = line.find(&format!("{name}: ")).unwrap() + name.len() + 2;
                    line[start..].split('\'').next().unwrap().to_owned()
                };
                server.first_token = Some((
                    header("CF-Access-Client-Id"),
                    header("CF-Access-Client-Secret"),
                ));
            }
            if let Some(rest) = line.strip_prefix("tollgate: metrics on ") {
                server.metrics = Some(rest.trim_end_matches("/metrics").to_owned());
            }
            if let Some(rest) = line.trim_start().strip_prefix("admin:") {
                let mut words = rest.split_whitespace();
                let url = words.next().unwrap().to_owned();
                let account = words.nth(1).unwrap().trim_end_matches(')').to_owned();
                server.admin = Some((url, account));
            }
            if line.starts_with("Press Ctrl-C") {
                return server;
            }
        }
    }
}

/// A running `tollgate serve`, killed on drop.
#[derive(Debug)]
pub struct ServeProcess {
    child: Child,
    /// Its origin, as its banner printed it.
    pub base: String,
    /// The AUD tag of the application it serves for requests no domain covers (empty when
    /// there is none).
    pub aud: String,
    /// The demo token's `(client ID, secret)` printed on a first run, if any.
    pub first_token: Option<(String, String)>,
    /// The metrics listener's origin (`http://ADDR`) when `--metrics-addr` was given.
    pub metrics: Option<String>,
    /// The admin API's base URL (`http://ADDR/client/v4`) and the account ID its paths name,
    /// when `--admin-addr` was given.
    pub admin: Option<(String, String)>,
}

impl ServeProcess {
    /// The protected URL, `<base>/`.
    pub fn url(&self) -> String {
        format!("{}/", self.base)
    }

    /// Sends SIGINT (Ctrl-C) and waits up to 30 s for an orderly exit (pending last-seen times
    /// and log events written); panics if it does not exit, or exits with an error.
    pub fn interrupt(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid}");
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not exit on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
