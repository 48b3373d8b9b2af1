//! A minimal Redis protocol (RESP2) client over a plain TCP stream.
//!
//! The backup needs the raw socket anyway (the replication handshake streams an RDB file after
//! its reply), and the rest is a handful of commands: AUTH, INFO, SELECT, SCAN, DUMP, PTTL,
//! RESTORE. Passwords go over the socket only, never into argv or messages.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status or bulk string).
    #[must_use]
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Status(s) => Some(s.clone()),
            Self::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and authenticates (`AUTH [user] password`) when a password is given.
    ///
    /// # Errors
    /// Connection failures and a refused AUTH (the message never contains the password).
    pub fn connect(
        host: &str,
        port: u16,
        user: Option<&str>,
        password: Option<&str>,
    ) -> io::Result<Self> {
        let stream = TcpStream::connect((host, port))?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let writer = stream.try_clone()?;
        let mut client = Self {
            reader: BufReader::with_capacity(1 << 20, stream),
            writer,
        };
        if let Some(pw) = password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = user {
                args.push(u.as_bytes());
            }
            args.push(pw.as_bytes());
            if let Reply::Error(e) = client.call(&args)? {
                // The server's text is safe to show; the password is not in it.
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("AUTH refused: {e}"),
                ));
            }
        }
        Ok(client)
    }

    /// Sends one command.
    ///
    /// # Errors
    /// Socket errors.
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf)
    }

    /// Sends one command and reads its reply.
    ///
    /// # Errors
    /// Socket errors or a malformed reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    /// Like [`Client::call`], but a server error becomes an `io::Error`.
    ///
    /// # Errors
    /// Socket errors, a malformed reply or an error reply.
    pub fn ok(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        match self.call(args)? {
            Reply::Error(e) => Err(io::Error::other(format!(
                "{}: {e}",
                String::from_utf8_lossy(args[0])
            ))),
            r => Ok(r),
        }
    }

    pub(crate) fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    pub(crate) fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    /// Reads one reply.
    ///
    /// # Errors
    /// Socket errors or a malformed reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected reply {line:?}"),
            )
        };
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => rest.parse().map(Reply::Int).map_err(|_| bad()),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad())?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut data = vec![0u8; usize::try_from(len).map_err(|_| bad())? + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(data.len() - 2);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                for _ in 0..n {
                    items.push(self.read_reply()?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(bad()),
        }
    }

    /// `INFO <section>` as key/value pairs.
    ///
    /// # Errors
    /// Socket or server errors.
    pub fn info(&mut self, section: &str) -> io::Result<Vec<(String, String)>> {
        let text = self
            .ok(&[b"INFO", section.as_bytes()])?
            .text()
            .unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect())
    }

    /// Keys per database from `INFO keyspace` (`db0` → count).
    ///
    /// # Errors
    /// Socket or server errors.
    pub fn keyspace(&mut self) -> io::Result<std::collections::BTreeMap<String, u64>> {
        Ok(self
            .info("keyspace")?
            .into_iter()
            .filter_map(|(db, v)| {
                let keys = v
                    .split(',')
                    .find_map(|p| p.strip_prefix("keys="))?
                    .parse()
                    .ok()?;
                Some((db, keys))
            })
            .collect())
    }
}
