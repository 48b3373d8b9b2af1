//! `redis` assets: the RDB taken over the replication protocol (as `redis-cli --rdb` does),
//! consistent and without touching the server's disk; restored by replaying `DUMP`/`RESTORE`
//! from a sandbox loaded with the RDB.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, BufRead, Read, Write},
    path::Path,
    sync::Arc,
};

use lifeboat_core::{ArtifactData, Payload, Secret, SourceFacts, StreamArtifact};

use crate::{
    Source, SourceError,
    resp::{Client, Reply},
};

/// Counts keys per database in an RDB file (the engine loads it into a sandbox).
pub type KeyCounter = Arc<dyn Fn(&Path) -> Result<BTreeMap<String, u64>, String> + Send + Sync>;

#[derive(Clone)]
pub struct RedisSource {
    pub asset: String,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub count_keys: Option<KeyCounter>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("asset", &self.asset)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Name of the artifact in the snapshot.
pub const RDB_NAME: &str = "dump.rdb";

impl RedisSource {
    fn err(&self, reason: impl std::fmt::Display) -> SourceError {
        let reason = reason.to_string();
        let asset = &self.asset;
        let hint = if reason.contains("NOAUTH") || reason.contains("AUTH refused") {
            Some(format!(
                "the server wants a password: set password-env (and username for an ACL user) in [assets.{asset}]"
            ))
        } else if reason.contains("Connection refused") || reason.contains("timed out") {
            Some(format!(
                "check the host and port in assets.{asset}.url and that the server runs"
            ))
        } else {
            None
        };
        SourceError::Server {
            asset: asset.clone(),
            server: format!("Redis {}:{}", self.host, self.port),
            reason,
            hint,
        }
    }

    fn connect(&self) -> Result<Client, SourceError> {
        Client::connect(
            &self.host,
            self.port,
            self.username.as_deref(),
            self.password.as_ref().map(Secret::expose),
        )
        .map_err(|e| self.err(e))
    }

    /// Fetches the RDB into `out` through `PSYNC`: returns the replication id and offset.
    fn fetch_rdb(&self, out: &mut fs::File) -> Result<(String, String), SourceError> {
        let mut c = self.connect()?;
        // Older servers refuse these; the transfer works without them.
        let _ = c.call(&[b"REPLCONF", b"capa", b"eof"]);
        let _ = c.call(&[b"REPLCONF", b"rdb-only", b"1"]);
        c.send(&[b"PSYNC", b"?", b"-1"]).map_err(|e| self.err(e))?;
        let reply = loop {
            let line = c.read_line().map_err(|e| self.err(e))?;
            if !line.is_empty() {
                break line;
            }
        };
        let Some(rest) = reply.strip_prefix("+FULLRESYNC ") else {
            return Err(self.err(format!("replication refused: {reply}")));
        };
        let mut parts = rest.split_whitespace();
        let replid = parts.next().unwrap_or_default().to_owned();
        let offset = parts.next().unwrap_or_default().to_owned();
        // The server sends newlines while it prepares the RDB.
        let header = loop {
            let line = c.read_line().map_err(|e| self.err(e))?;
            if !line.is_empty() {
                break line;
            }
        };
        let reader = c.reader();
        if let Some(mark) = header.strip_prefix("$EOF:") {
            copy_until_mark(reader, out, mark.as_bytes()).map_err(|e| self.err(e))?;
        } else if let Some(len) = header.strip_prefix('$') {
            let len: u64 = len
                .parse()
                .map_err(|_| self.err(format!("unexpected RDB header {header:?}")))?;
            let copied = io::copy(&mut reader.take(len), out).map_err(|e| self.err(e))?;
            if copied != len {
                return Err(self.err(format!("RDB cut short: {copied} of {len} bytes")));
            }
        } else {
            return Err(self.err(format!("unexpected RDB header {header:?}")));
        }
        Ok((replid, offset))
    }

    /// Replays every key of the server at `from` (a sandbox) into this asset's server with
    /// `RESTORE ... REPLACE`, keeping TTLs. Returns the number of keys written.
    ///
    /// # Errors
    /// Connection, command or protocol failures, naming the server.
    pub fn replay_from(&self, from_port: u16) -> Result<u64, SourceError> {
        let mut src =
            Client::connect("127.0.0.1", from_port, None, None).map_err(|e| self.err(e))?;
        let mut dst = self.connect()?;
        let keyspace = src.keyspace().map_err(|e| self.err(e))?;
        let mut written = 0u64;
        for db in keyspace.keys() {
            let n = db.trim_start_matches("db").as_bytes().to_vec();
            src.ok(&[b"SELECT", &n]).map_err(|e| self.err(e))?;
            dst.ok(&[b"SELECT", &n]).map_err(|e| self.err(e))?;
            let mut cursor = b"0".to_vec();
            loop {
                let reply = src
                    .ok(&[b"SCAN", &cursor, b"COUNT", b"1000"])
                    .map_err(|e| self.err(e))?;
                let Reply::Array(Some(mut parts)) = reply else {
                    return Err(self.err("unexpected SCAN reply"));
                };
                let keys = parts.pop();
                cursor = parts
                    .pop()
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .into_bytes();
                if let Some(Reply::Array(Some(keys))) = keys {
                    for key in keys {
                        let Reply::Bulk(Some(key)) = key else {
                            continue;
                        };
                        let ttl = match src.ok(&[b"PTTL", &key]).map_err(|e| self.err(e))? {
                            Reply::Int(t) if t > 0 => t,
                            _ => 0,
                        };
                        let Reply::Bulk(Some(payload)) =
                            src.ok(&[b"DUMP", &key]).map_err(|e| self.err(e))?
                        else {
                            continue; // expired meanwhile
                        };
                        let ttl = ttl.to_string();
                        dst.ok(&[b"RESTORE", &key, ttl.as_bytes(), &payload, b"REPLACE"])
                            .map_err(|e| self.err(e))?;
                        written += 1;
                    }
                }
                if cursor == b"0" {
                    break;
                }
            }
        }
        Ok(written)
    }
}

/// Copies `reader` into `out` until the 40-byte end mark of a diskless transfer.
fn copy_until_mark(reader: &mut impl BufRead, out: &mut fs::File, mark: &[u8]) -> io::Result<()> {
    let mut tail: Vec<u8> = Vec::with_capacity(1 << 20);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "RDB transfer cut short",
            ));
        }
        let n = chunk.len();
        tail.extend_from_slice(chunk);
        reader.consume(n);
        if tail.ends_with(mark) {
            tail.truncate(tail.len() - mark.len());
            return out.write_all(&tail);
        }
        // Keep the last bytes in case the mark spans two reads.
        if tail.len() > (1 << 20) {
            let keep = tail.len() - mark.len();
            out.write_all(&tail[..keep])?;
            tail.drain(..keep);
        }
    }
}

impl Source for RedisSource {
    fn preflight(&self) -> Result<(), SourceError> {
        let mut c = self.connect()?;
        match c.call(&[b"PING"]).map_err(|e| self.err(e))? {
            Reply::Error(e) => Err(self.err(e)),
            _ => Ok(()),
        }
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let mut c = self.connect()?;
        let server = c.info("server").map_err(|e| self.err(e))?;
        let version = server
            .iter()
            .find(|(k, _)| k == "redis_version")
            .map(|(_, v)| format!("Redis {v}"));
        let memory = c.info("memory").map_err(|e| self.err(e))?;
        drop(c);
        let (file, path) = tempfile::Builder::new()
            .prefix(".lifeboat-redis-")
            .tempfile()
            .map_err(|e| self.err(format!("create temporary file: {e}")))?
            .into_parts();
        let mut file = file;
        let (replid, offset) = self.fetch_rdb(&mut file)?;
        file.sync_all().map_err(|e| self.err(e))?;
        let mut consistency = BTreeMap::new();
        consistency.insert("replication-id".to_owned(), replid);
        consistency.insert("replication-offset".to_owned(), offset);
        if let Some((_, used)) = memory.iter().find(|(k, _)| k == "used_memory") {
            consistency.insert("used-memory".to_owned(), used.clone());
        }
        let keys = match &self.count_keys {
            Some(count) => {
                count(&path).map_err(|e| self.err(format!("count keys of the RDB: {e}")))?
            }
            None => BTreeMap::new(),
        };
        let artifact = StreamArtifact {
            name: RDB_NAME.to_owned(),
            data: ArtifactData::File(path),
        };
        Ok((
            Payload::Streams(vec![artifact]),
            SourceFacts {
                server_version: version,
                consistency,
                keys,
                ..SourceFacts::default()
            },
        ))
    }

    fn identity(&self) -> String {
        format!("redis {}:{}", self.host, self.port)
    }
}
