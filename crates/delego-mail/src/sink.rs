//! A local SMTP server for tests: it accepts what lettre sends and keeps it, and can be told
//! to refuse deliveries so that retries can be tested.
//!
//! It speaks just enough SMTP (RFC 5321) for a well-behaved client: EHLO/HELO, MAIL, RCPT,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT. No TLS, no authentication.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A message the sink accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The envelope sender (`MAIL FROM`), empty for the null sender.
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as sent, dot-unstuffed, with its CRLF line endings.
    pub raw: Vec<u8>,
}

/// How the sink refuses a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `451 4.3.0`: try again later.
    Transient,
    /// `550 5.1.1`: never.
    Permanent,
}

#[derive(Default)]
struct State {
    messages: Vec<Captured>,
    failures: VecDeque<Failure>,
}

type Shared = Arc<Mutex<State>>;

/// The running sink. Stops when dropped.
pub struct SmtpSink {
    port: u16,
    state: Shared,
    count: watch::Receiver<usize>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts the sink on 127.0.0.1 and a free port.
    ///
    /// # Panics
    /// If no local port can be bound: a test cannot run without one.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the SMTP sink binds a local port");
        let port = listener
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        let state = Shared::default();
        let (count_tx, count) = watch::channel(0);
        let server = tokio::spawn(serve(listener, state.clone(), count_tx));
        SmtpSink {
            port,
            state,
            count,
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Settings for sending to this sink.
    pub fn smtp(&self) -> crate::Smtp {
        crate::Smtp::plain("127.0.0.1", self.port)
    }

    /// Everything accepted so far.
    pub fn messages(&self) -> Vec<Captured> {
        lock(&self.state).messages.clone()
    }

    /// Refuses the next `n` deliveries with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        lock(&self.state)
            .failures
            .extend(std::iter::repeat_n(failure, n));
    }

    /// Waits until at least `n` messages have arrived or `timeout` has passed, and returns
    /// what has arrived. Woken by each arrival: no polling.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        let mut count = self.count.clone();
        let _ = tokio::time::timeout(timeout, count.wait_for(|&c| c >= n)).await;
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, state: Shared, count: watch::Sender<usize>) {
    let count = Arc::new(count);
    // Connections live in the set, so that stopping the server stops them too.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(session(stream, state.clone(), count.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One SMTP session. Errors end it quietly: a client that hangs up is no test failure.
async fn session(stream: TcpStream, state: Shared, count: Arc<watch::Sender<usize>>) {
    let _ = converse(stream, &state, &count).await;
}

async fn converse(
    stream: TcpStream,
    state: &Shared,
    count: &watch::Sender<usize>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.localhost ESMTP\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK\r\n",
            "HELO" => b"250 sink.localhost\r\n",
            "MAIL" => match lock(state).failures.pop_front() {
                Some(Failure::Transient) => b"451 4.3.0 Try again later\r\n",
                Some(Failure::Permanent) => b"550 5.1.1 Mailbox unavailable\r\n",
                None => {
                    from = Some(path_argument(command));
                    to.clear();
                    b"250 2.1.0 OK\r\n"
                }
            },
            "RCPT" if from.is_some() => {
                to.push(path_argument(command));
                b"250 2.1.5 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL first\r\n",
            "DATA" if from.is_some() && !to.is_empty() => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let raw = read_data(&mut lines).await?;
                let captured = Captured {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    raw,
                };
                let arrived = {
                    let mut state = lock(state);
                    state.messages.push(captured);
                    state.messages.len()
                };
                count.send_replace(arrived);
                b"250 2.0.0 Queued\r\n"
            }
            "DATA" => b"503 5.5.1 MAIL and RCPT first\r\n",
            "RSET" => {
                from = None;
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// `MAIL FROM:<a@b> SIZE=123` → `a@b`.
fn path_argument(command: &str) -> String {
    command
        .split_once(':')
        .map(|(_, rest)| rest.trim())
        .and_then(|rest| rest.strip_prefix('<'))
        .and_then(|rest| rest.split_once('>'))
        .map(|(path, _)| path.to_string())
        .unwrap_or_default()
}

/// The message after DATA, up to the line with a single dot, unstuffing leading dots.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(raw);
        }
        let unstuffed = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        raw.extend_from_slice(unstuffed);
    }
}
