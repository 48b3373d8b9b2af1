//! Where a repository lives.

use std::{fmt, path::PathBuf};

use serde::Serialize;

/// A repository's location: a local directory or an S3-compatible bucket.
///
/// Credentials are never part of a location: S3 keys come from the standard AWS environment
/// variables, profile files or the plan's `*-env` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RepoLocation {
    Local { path: PathBuf },
    S3(S3Location),
}

/// `s3://bucket/prefix?endpoint=..&region=..&path-style=true&storage-class=..`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket` (MinIO, Garage, moto) instead of `bucket.endpoint`.
    pub path_style: bool,
    pub storage_class: Option<String>,
    /// `timeout=`: how long a request may take (a read or write may stall for half of it)
    /// before it is retried; 60 s unless given.
    pub timeout: Option<std::time::Duration>,
    /// The repository's `object-lock`: the bucket keeps every object version this long (S3
    /// Object Lock with a default retention), so writes carry the checksum such buckets
    /// require, and nothing younger is forgotten or pruned.
    pub object_lock: Option<std::time::Duration>,
}

impl fmt::Display for RepoLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { path } => write!(f, "{}", path.display()),
            Self::S3(s3) => {
                write!(f, "s3://{}", s3.bucket)?;
                if !s3.prefix.is_empty() {
                    write!(f, "/{}", s3.prefix)?;
                }
                if let Some(endpoint) = &s3.endpoint {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}
