//! A TCP fault proxy: sits between a client and a real server (e.g. `moto_server`) and, at set
//! rates, resets connections, cuts them mid-transfer, answers `500 Internal Server Error`
//! instead of the server, or delays them. Everything else is relayed byte for byte.
//!
//! Decisions are drawn per connection from a seeded generator, so a failing run can be
//! repeated with the same seed. Counters tell a test which faults actually happened.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// How often each fault strikes, per connection (0.0 to 1.0, drawn in this order).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Reset the connection (RST) as soon as the request's first bytes arrive.
    pub reset: f64,
    /// Relay, then reset the connection after a random number of bytes either way.
    pub cut: f64,
    /// Answer `500 Internal Server Error` (with an S3 error body) instead of the server.
    pub error_500: f64,
    /// Read the request and never answer, until the client gives up (its time-out).
    pub stall: f64,
    /// Hold the connection for up to `max_delay` before relaying.
    pub delay: f64,
    pub max_delay: Duration,
    /// Seed of the generator that draws the faults.
    pub seed: u64,
}

impl Faults {
    /// No faults: a plain relay.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            reset: 0.0,
            cut: 0.0,
            error_500: 0.0,
            stall: 0.0,
            delay: 0.0,
            max_delay: Duration::ZERO,
            seed: 0,
        }
    }
}

/// How many connections met each fault.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
    pub cuts: AtomicU64,
    pub errors_500: AtomicU64,
    pub stalls: AtomicU64,
    pub delays: AtomicU64,
}

impl FaultCounts {
    /// `connections=40 resets=2 cuts=1 500s=3 stalls=1 delays=5`
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "connections={} resets={} cuts={} 500s={} stalls={} delays={}",
            self.connections.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
            self.cuts.load(Ordering::Relaxed),
            self.errors_500.load(Ordering::Relaxed),
            self.stalls.load(Ordering::Relaxed),
            self.delays.load(Ordering::Relaxed),
        )
    }
}

/// A running proxy on 127.0.0.1; stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    counts: Arc<FaultCounts>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone, Copy)]
enum Fate {
    Reset,
    Cut { after: u64 },
    Error500,
    Stall,
    Delay(Duration),
    Relay,
}

impl FaultProxy {
    /// Starts relaying 127.0.0.1:<free port> to `upstream` with `faults`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn start(upstream: SocketAddr, faults: Faults) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind fault proxy")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(FaultCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        {
            let counts = Arc::clone(&counts);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(faults.seed);
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = conn else { continue };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    let fate = draw(&mut rng, &faults);
                    let counts = Arc::clone(&counts);
                    thread::spawn(move || {
                        let _ = serve(client, upstream, fate, &counts);
                    });
                }
            });
        }
        Ok(Self { addr, counts, stop })
    }

    /// `http://127.0.0.1:PORT`
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What has been injected so far.
    #[must_use]
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn draw(rng: &mut StdRng, f: &Faults) -> Fate {
    let x: f64 = rng.random();
    let mut edge = f.reset;
    if x < edge {
        return Fate::Reset;
    }
    edge += f.cut;
    if x < edge {
        return Fate::Cut {
            // Small, so that most requests (a few hundred bytes of head) are cut too.
            after: rng.random_range(1..1024),
        };
    }
    edge += f.error_500;
    if x < edge {
        return Fate::Error500;
    }
    edge += f.stall;
    if x < edge {
        return Fate::Stall;
    }
    edge += f.delay;
    if x < edge && !f.max_delay.is_zero() {
        return Fate::Delay(f.max_delay.mul_f64(rng.random()));
    }
    Fate::Relay
}

/// Closes with RST rather than FIN, as a crashed peer or a middlebox does.
fn reset(stream: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ =
        nix::sys::socket::setsockopt(&stream.as_fd(), nix::sys::socket::sockopt::Linger, &linger);
}

fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    fate: Fate,
    counts: &FaultCounts,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    match fate {
        Fate::Reset => {
            let mut first = [0u8; 1];
            let _ = client.read(&mut first)?;
            counts.resets.fetch_add(1, Ordering::Relaxed);
            reset(&client);
            return Ok(());
        }
        Fate::Error500 => {
            read_request(&mut client)?;
            counts.errors_500.fetch_add(1, Ordering::Relaxed);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>injected by the fault proxy</Message></Error>";
            write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            client.flush()?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Fate::Stall => {
            read_request(&mut client)?;
            counts.stalls.fetch_add(1, Ordering::Relaxed);
            // Silent until the client hangs up.
            let mut sink = [0u8; 4096];
            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
            return Ok(());
        }
        Fate::Delay(d) => {
            counts.delays.fetch_add(1, Ordering::Relaxed);
            thread::sleep(d);
        }
        Fate::Cut { .. } | Fate::Relay => {}
    }
    let server = TcpStream::connect(upstream)?;
    let cut_after = match fate {
        Fate::Cut { after } => Some(after),
        _ => None,
    };
    let up = {
        let (from, to) = (client.try_clone()?, server.try_clone()?);
        thread::spawn(move || pump(from, to, cut_after))
    };
    let down = pump(server.try_clone()?, client.try_clone()?, cut_after);
    let up = up.join().unwrap_or(Ok(false));
    if matches!(down, Ok(true)) || matches!(up, Ok(true)) {
        counts.cuts.fetch_add(1, Ordering::Relaxed);
        reset(&client);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    Ok(())
}

/// Copies `from` to `to` until end of stream; with `cut_after`, stops after that many bytes
/// and returns true (the caller then resets both sides).
fn pump(mut from: TcpStream, mut to: TcpStream, cut_after: Option<u64>) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return Ok(false);
            }
            Ok(n) => n,
        };
        if let Some(limit) = cut_after
            && sent + n as u64 >= limit
        {
            let part = usize::try_from(limit - sent).unwrap_or(0);
            let _ = to.write_all(&buf[..part]);
            reset(&from);
            reset(&to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return Ok(true);
        }
        to.write_all(&buf[..n])?;
        sent += n as u64;
    }
}

/// Reads one request's head and `Content-Length` body, so that the answer is not lost to an
/// RST for unread data.
fn read_request(client: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    io::copy(&mut client.take(len), &mut io::sink())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that sends 100 KiB and closes; through a proxy that cuts every connection,
    /// the client gets less, and the cut is counted.
    #[test]
    fn cuts_are_made_and_counted() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let upstream = server.local_addr().unwrap();
        thread::spawn(move || {
            for conn in server.incoming() {
                let mut conn = conn.unwrap();
                let mut req = [0u8; 16];
                let _ = conn.read(&mut req);
                let _ = conn.write_all(&vec![7u8; 100 * 1024]);
            }
        });
        let proxy = FaultProxy::start(
            upstream,
            Faults {
                cut: 1.0,
                ..Faults::none()
            },
        )
        .unwrap();
        let mut client = TcpStream::connect(proxy.addr).unwrap();
        client.write_all(b"GET").unwrap();
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        assert!(got.len() < 100 * 1024, "{} bytes came through", got.len());
        for _ in 0..100 {
            if proxy.counts().cuts.load(Ordering::Relaxed) == 1 {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("cut not counted: {}", proxy.counts().summary());
    }
}
