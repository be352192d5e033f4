//! A process-wide capture of every `tracing` event, at TRACE level.
//!
//! Process-wide, not per thread: events from server tasks on other threads count, and a
//! per-thread subscriber races with tracing's callsite interest cache when tests run in
//! parallel. Install it first thing in the test binary's one log test (a binary of its own).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything written by `tracing` in this process since [`LogCapture::global`] was first
/// called.
#[derive(Clone, Debug, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The capture, installed as the global default subscriber on the first call.
    pub fn global() -> &'static LogCapture {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture = LogCapture::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(capture.clone())
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            capture
        })
    }

    /// All captured lines.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
