//! The S3 backend: rustic's repository files on an S3-compatible store through OpenDAL, with
//! time-outs.
//!
//! rustic_backend's OpenDAL backend retries, but sets no time-out: a store that accepts a
//! connection and then goes silent hangs a backup for ever. This backend is built from the same
//! options with three layers: a time-out per operation and per stalled read or write (a timed
//! out request counts as a transient error), retries with jittered exponential backoff, and a
//! bound on concurrent requests. The same operator serves the lock files (`lock.rs`).

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use opendal::{
    ErrorKind as DalErrorKind, Metadata,
    layers::{ConcurrentLimitLayer, RetryLayer, TimeoutLayer},
    options::{ListOptions, ReadOptions},
};
use rustic_core::{
    ALL_FILE_TYPES, BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult,
    WriteBackend,
};

/// Requests that do not move data (list, stat, delete) give up after this long, unless the
/// URL's `timeout=` says otherwise; a read or write that makes no progress for half of it
/// gives up too.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries after the first, with backoff from 1 s doubling up to 30 s, jittered.
pub const RETRIES: usize = 5;
/// Requests in flight at once.
pub const CONNECTIONS: usize = 8;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("lifeboat-s3")
            .enable_all()
            .build()
            .expect("start the runtime for S3 requests")
    })
}

/// An S3 operator with Lifeboat's time-out, retry and concurrency layers.
///
/// # Errors
/// When the options do not make a valid S3 configuration.
pub(crate) fn operator(
    options: BTreeMap<String, String>,
    timeout: Option<Duration>,
) -> Result<opendal::blocking::Operator, opendal::Error> {
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    // The S3 service and the reqwest HTTP transport register themselves with OpenDAL only
    // when asked (once per process).
    opendal::install_default();
    let op = opendal::Operator::via_iter("s3", options)?
        // Innermost first: each try has its own time-out, and the retry layer sees a
        // time-out as a transient error.
        .layer(
            TimeoutLayer::new()
                .with_timeout(timeout)
                .with_io_timeout(timeout / 2),
        )
        .layer(
            RetryLayer::new()
                .with_max_times(RETRIES)
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter(),
        )
        .layer(ConcurrentLimitLayer::new(CONNECTIONS));
    let _guard = runtime().enter();
    opendal::blocking::Operator::new(op)
}

/// rustic's repository files (config, keys, snapshots, index, data) in a bucket prefix.
#[derive(Debug, Clone)]
pub(crate) struct S3Backend {
    op: opendal::blocking::Operator,
    /// Writes data packs, with the plan's storage class; `None`: `op` writes them too.
    packs: Option<opendal::blocking::Operator>,
    location: String,
}

impl S3Backend {
    pub(crate) const fn new(
        op: opendal::blocking::Operator,
        packs: Option<opendal::blocking::Operator>,
        location: String,
    ) -> Self {
        Self {
            op,
            packs,
            location,
        }
    }

    /// restic's layout: `config`, `data/ab/abcd…`, `<dir>/<id>`.
    fn path(tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => "config".to_owned(),
            FileType::Pack => format!("data/{}/{}", &hex[..2], &hex[..]),
            _ => format!("{}/{}", tpe.dirname(), &hex[..]),
        }
    }

    fn error(what: &str, path: &str, err: opendal::Error) -> Box<RusticError> {
        RusticError::with_source(ErrorKind::Backend, "{what} `{path}` on the S3 store", err)
            .attach_context("what", what.to_owned())
            .attach_context("path", path.to_owned())
    }

    fn entries(&self, tpe: FileType) -> RusticResult<Vec<(Id, Metadata)>> {
        let dir = format!("{}/", tpe.dirname());
        let listed = self
            .op
            .list_options(
                &dir,
                ListOptions {
                    recursive: true,
                    ..Default::default()
                },
            )
            .map_err(|e| Self::error("list", &dir, e))?;
        Ok(listed
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .filter_map(|e| Some((Id::parse_some(e.name(), tpe)?, e.metadata().clone())))
            .collect())
    }
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let size = |m: &Metadata| u32::try_from(m.content_length()).ok();
        if tpe == FileType::Config {
            return match self.op.stat("config") {
                Ok(meta) => Ok(vec![(Id::default(), size(&meta).unwrap_or_default())]),
                Err(e) if e.kind() == DalErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(Self::error("read", "config", e)),
            };
        }
        Ok(self
            .entries(tpe)?
            .into_iter()
            .filter_map(|(id, meta)| Some((id, size(&meta)?)))
            .collect())
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        if tpe == FileType::Config {
            return Ok(self
                .list_with_size(tpe)?
                .into_iter()
                .map(|(id, _)| id)
                .collect());
        }
        Ok(self.entries(tpe)?.into_iter().map(|(id, _)| id).collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = Self::path(tpe, id);
        Ok(self
            .op
            .read(&path)
            .map_err(|e| Self::error("read", &path, e))?
            .to_bytes())
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = Self::path(tpe, id);
        let range = u64::from(offset)..u64::from(offset) + u64::from(length);
        Ok(self
            .op
            .read_options(
                &path,
                ReadOptions {
                    range: range.into(),
                    ..Default::default()
                },
            )
            .map_err(|e| Self::error("read", &path, e))?
            .to_bytes())
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        let root = self.op.info().root();
        let root = root.trim_matches('/');
        let path = Self::path(tpe, id);
        if root.is_empty() {
            path
        } else {
            format!("{root}/{path}")
        }
    }
}

impl WriteBackend for S3Backend {
    fn create(&self) -> RusticResult<()> {
        for tpe in ALL_FILE_TYPES {
            let dir = format!("{}/", tpe.dirname());
            self.op
                .create_dir(&dir)
                .map_err(|e| Self::error("create", &dir, e))?;
        }
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = Self::path(tpe, id);
        let op = match (&self.packs, tpe) {
            (Some(packs), FileType::Pack) => packs,
            _ => &self.op,
        };
        op.write(&path, content.into_vec())
            .map(|_| ())
            .map_err(|e| Self::error("write", &path, e))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = Self::path(tpe, id);
        self.op
            .delete(&path)
            .map_err(|e| Self::error("remove", &path, e))
    }
}

/// The backend as rustic takes it.
pub(crate) fn backend(
    op: opendal::blocking::Operator,
    packs: Option<opendal::blocking::Operator>,
    location: String,
) -> Arc<dyn WriteBackend> {
    Arc::new(S3Backend::new(op, packs, location))
}
