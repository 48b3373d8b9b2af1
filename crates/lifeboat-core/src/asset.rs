//! What kind of thing an asset is, and how much it matters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of asset a plan can name (`type = "..."` in `[assets.*]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetKind {
    Postgres,
    PostgresCluster,
    Sqlite,
    Redis,
    Mysql,
    Files,
    DockerVolume,
    Command,
}

impl AssetKind {
    pub const ALL: [Self; 8] = [
        Self::Postgres,
        Self::PostgresCluster,
        Self::Sqlite,
        Self::Redis,
        Self::Mysql,
        Self::Files,
        Self::DockerVolume,
        Self::Command,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::PostgresCluster => "postgres-cluster",
            Self::Sqlite => "sqlite",
            Self::Redis => "redis",
            Self::Mysql => "mysql",
            Self::Files => "files",
            Self::DockerVolume => "docker-volume",
            Self::Command => "command",
        }
    }

    /// Parses the name used in tags and plan files.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Recovery priority, P0 (restore first) to P3.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Priority {
    P0,
    P1,
    #[default]
    P2,
    P3,
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::P0 => "P0",
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
        };
        f.write_str(s)
    }
}
