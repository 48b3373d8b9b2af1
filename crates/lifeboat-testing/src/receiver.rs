//! A local HTTP receiver for notification tests: listens on 127.0.0.1 at a free port, keeps
//! every request it gets, and answers each with the next status of a script (then 200).
//! HTTP/1.1 with `Content-Length` bodies, one request per connection, as the notifiers send.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The body parsed as JSON; panics with the body when it is not.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {}",
                self.method,
                self.target,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses to answer, per path prefix, first one first.
    script: Vec<(String, u16)>,
}

/// The receiver; stops accepting when dropped (its thread ends with the process).
pub struct Receiver {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    /// Starts listening on 127.0.0.1 at a free port.
    ///
    /// # Panics
    /// When loopback cannot be bound.
    #[must_use]
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
        });
        Self { port, shared }
    }

    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers the next request whose path starts with `prefix` with `status` (once).
    pub fn fail_next(&self, prefix: &str, status: u16) {
        self.shared
            .lock()
            .expect("receiver lock")
            .script
            .push((prefix.to_owned(), status));
    }

    /// Every request so far whose path starts with `prefix`, in arrival order.
    #[must_use]
    pub fn requests(&self, prefix: &str) -> Vec<Received> {
        self.shared
            .lock()
            .expect("receiver lock")
            .received
            .iter()
            .filter(|r| r.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Polls until `pred` holds for the requests under `prefix`, or panics after `limit`.
    pub fn wait_for(
        &self,
        prefix: &str,
        limit: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.requests(prefix);
            if pred(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for requests to {prefix}; got: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn serve(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let status = {
        let mut s = shared.lock().expect("receiver lock");
        let status = s
            .script
            .iter()
            .position(|(p, _)| target.starts_with(p.as_str()))
            .map_or(200, |i| s.script.remove(i).1);
        s.received.push(Received {
            method,
            target,
            headers,
            body,
        });
        status
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"
    )?;
    stream.flush()
}
