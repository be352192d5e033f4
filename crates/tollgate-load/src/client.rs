//! The load: a closed-loop HTTP/1.1 client written straight on sockets, so the load core spends
//! its time in syscalls rather than in a client library. Each connection sends one request,
//! reads the whole response (status line, headers, `Content-Length` body), and sends the next;
//! keep-alive throughout, no pipelining (as `wrk` does by default).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to send: complete HTTP/1.1 requests, taken in turn (one for most variants, a pool of
/// distinct ones for the cache flood).
#[derive(Clone, Debug)]
pub(crate) struct Requests {
    all: Rc<[Vec<u8>]>,
    next: Rc<Cell<usize>>,
    /// The status that counts as answered (200, or 401 for a refusal variant).
    expected: u16,
}

impl Requests {
    pub(crate) fn new(all: Vec<Vec<u8>>) -> Self {
        assert!(!all.is_empty(), "a load needs at least one request");
        Self {
            all: all.into(),
            next: Rc::new(Cell::new(0)),
            expected: 200,
        }
    }

    /// The same requests, answered when the status is `status` instead of 200.
    pub(crate) fn expecting(mut self, status: u16) -> Self {
        self.expected = status;
        self
    }

    fn take(&self) -> &[u8] {
        let i = self.next.get();
        self.next
            .set(if i + 1 == self.all.len() { 0 } else { i + 1 });
        &self.all[i]
    }
}

/// A GET of `/` with these extra header lines (each `Name: value`).
pub(crate) fn get(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"GET / HTTP/1.1\r\nHost: bench.example.com\r\n".to_vec();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The outcome of one timed load.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// Responses with the expected status (200 unless [`Requests::expecting`] says otherwise).
    pub(crate) ok: u64,
    /// Other statuses, and connections that failed.
    pub(crate) failed: u64,
    pub(crate) elapsed: Duration,
}

impl Outcome {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `connections` closed loops against `addr` for `duration` on the current (local) task
/// set and counts the answers.
pub(crate) async fn run(
    addr: SocketAddr,
    requests: &Requests,
    connections: usize,
    duration: Duration,
) -> Outcome {
    run_recording(addr, requests, connections, duration, None).await
}

/// Each request's latency, in microseconds, from the first byte written to the last byte read.
pub(crate) type Latencies = Rc<RefCell<Vec<u32>>>;

/// [`run`], also pushing every answered request's latency to `latencies` when given.
pub(crate) async fn run_recording(
    addr: SocketAddr,
    requests: &Requests,
    connections: usize,
    duration: Duration,
    latencies: Option<&Latencies>,
) -> Outcome {
    let ok = Rc::new(Cell::new(0u64));
    let failed = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (requests, ok, failed) = (requests.clone(), ok.clone(), failed.clone());
        let latencies = latencies.cloned();
        tasks.push(tokio::task::spawn_local(async move {
            if connection(addr, &requests, deadline, &ok, &failed, latencies.as_ref())
                .await
                .is_err()
            {
                failed.set(failed.get() + 1);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Outcome {
        ok: ok.get(),
        failed: failed.get(),
        elapsed: started.elapsed(),
    }
}

async fn connection(
    addr: SocketAddr,
    requests: &Requests,
    deadline: Instant,
    ok: &Cell<u64>,
    failed: &Cell<u64>,
    latencies: Option<&Latencies>,
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        stream.write_all(requests.take()).await?;
        let status = read_response(&mut stream, &mut buf).await?;
        if let Some(latencies) = latencies {
            let micros = sent.elapsed().as_micros();
            latencies
                .borrow_mut()
                .push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
        if status == requests.expected {
            ok.set(ok.get() + 1);
        } else {
            failed.set(failed.get() + 1);
        }
    }
    Ok(())
}

/// Reads one response into `buf` and answers its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        filled += n;
        if let Some((status, total)) = parse_head(&buf[..filled])? {
            while filled < total {
                if total > buf.len() {
                    buf.resize(total, 0);
                }
                let n = stream.read(&mut buf[filled..total]).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                filled += n;
            }
            return Ok(status);
        }
    }
}

/// The status and the full length (head + body) of a response whose head is complete.
fn parse_head(bytes: &[u8]) -> std::io::Result<Option<(u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(std::io::Error::other(err)),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .ok_or_else(|| std::io::Error::other("response without Content-Length"))?;
    Ok(Some((response.code.unwrap_or(0), head + length)))
}

/// One request, its status and head, for setting a variant up (e.g. an exchange to get the
/// cookie the reuse variant sends).
pub(crate) async fn once(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let status = read_response(&mut stream, &mut buf).await?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    Ok((
        status,
        String::from_utf8_lossy(&buf[..head_end]).into_owned(),
    ))
}
