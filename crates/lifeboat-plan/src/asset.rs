//! `[assets.NAME]`: what to back up, how often, and how long to keep it.

use std::{path::PathBuf, time::Duration};

use lifeboat_core::{AnomalyThresholds, AssetKind, Priority, Redacted, SizeBounds};

use lifeboat_core::Retention;

use crate::{
    config::{
        AnomalyConfig, AssetConfig, KeepCount, RedactConfig, RetentionConfig, SizeConfig, WalConfig,
    },
    document::At,
    error::PlanError,
    key_path::KeyPath,
    resolve::Resolver,
    schedule::Schedule,
    secret_source::SecretSource,
};

/// An asset with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAsset {
    /// The key of `[assets.NAME]`; tags its snapshots (`asset=NAME`).
    pub name: String,
    /// What the asset is and how to reach it.
    pub spec: AssetSpec,
    /// Recovery order; `P2` unless given.
    pub priority: Priority,
    /// When the daemon backs it up; `None` means only on demand.
    pub schedule: Option<Schedule>,
    /// Recovery point objective: the oldest a usable snapshot may be. From `[plan]` unless given.
    pub rpo: Duration,
    /// Recovery time objective: how long a restore may take. From `[plan]` unless given.
    pub rto: Duration,
    /// Whether the asset or `[plan]` states an RPO (otherwise it is the built-in default).
    pub rpo_given: bool,
    /// Whether the asset or `[plan]` states an RTO (otherwise it is the built-in default).
    pub rto_given: bool,
    /// Which snapshots `forget` keeps; empty keeps all.
    pub retention: Retention,
    /// How far a new snapshot's size may stray from the average of the previous ones before
    /// `verify` reports it; half or double unless given.
    pub anomaly: AnomalyThresholds,
    /// Absolute bounds for a snapshot's size; none unless given.
    pub size: SizeBounds,
    /// Queries run against a sandbox restore (SQL for databases, shell for others).
    pub checks: Vec<String>,
}

impl ResolvedAsset {
    /// The asset's type, as written in `type = "..."`.
    #[must_use]
    pub const fn kind(&self) -> AssetKind {
        match self.spec {
            AssetSpec::Postgres(_) => AssetKind::Postgres,
            AssetSpec::PostgresCluster(_) => AssetKind::PostgresCluster,
            AssetSpec::Sqlite(_) => AssetKind::Sqlite,
            AssetSpec::Redis(_) => AssetKind::Redis,
            AssetSpec::Mysql(_) => AssetKind::Mysql,
            AssetSpec::Files(_) => AssetKind::Files,
            AssetSpec::DockerVolume(_) => AssetKind::DockerVolume,
            AssetSpec::Command(_) => AssetKind::Command,
        }
    }
}

/// The type-specific part of an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetSpec {
    /// `type = "postgres"`
    Postgres(PostgresSpec),
    /// `type = "postgres-cluster"`
    PostgresCluster(PostgresClusterSpec),
    /// `type = "sqlite"`
    Sqlite(SqliteSpec),
    /// `type = "redis"`
    Redis(RedisSpec),
    /// `type = "mysql"`
    Mysql(MysqlSpec),
    /// `type = "files"`
    Files(FilesSpec),
    /// `type = "docker-volume"`
    DockerVolume(DockerVolumeSpec),
    /// `type = "command"`
    Command(CommandSpec),
}

/// A PostgreSQL database, dumped with `pg_dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSpec {
    /// `postgres://user@host:port/db`; never with a password.
    pub url: Redacted,
    /// Otherwise libpq's own `PGPASSWORD`/`.pgpass` apply.
    pub password: Option<SecretSource>,
    /// Parallel dump/restore jobs; 1 unless given.
    pub jobs: u32,
    /// Also dump roles and tablespaces (`pg_dumpall --globals-only`).
    pub globals: bool,
}

/// A whole PostgreSQL cluster: physical base backups over the replication protocol and its
/// write-ahead log archived continuously, for restores to any point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresClusterSpec {
    /// `postgres://user@host:port/db` of a role that may replicate; never with a password.
    pub url: Redacted,
    /// Otherwise libpq's own `PGPASSWORD`/`.pgpass` apply.
    pub password: Option<SecretSource>,
    /// The cluster's data directory on this host, when it runs here.
    pub data_dir: Option<PathBuf>,
    /// How the write-ahead log reaches the repository.
    pub wal: WalMode,
}

/// How a cluster's write-ahead log reaches the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalMode {
    /// The server's `archive_command` pushes each finished segment (`lifeboat wal push`).
    Archive,
    /// `lifeboat wal stream` (or the daemon) keeps `pg_receivewal` on a replication slot and
    /// stores the unfinished segment every `every`.
    Stream { every: Duration },
}

impl WalMode {
    /// How often a stream stores the unfinished segment unless the plan says otherwise.
    pub const STREAM_EVERY: Duration = Duration::from_secs(5);
}

/// An SQLite database file, copied with the online backup API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSpec {
    /// Absolute path to the database file.
    pub path: PathBuf,
}

/// A Redis server, snapshotted over the replication protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// `redis://host:port/db` or `rediss://`; never with a password.
    pub url: Redacted,
    /// `password-env`/`-file`/`-command`, when the server requires one.
    pub password: Option<SecretSource>,
    /// ACL user name, when not the default user.
    pub username: Option<String>,
    /// The server's data directory, when local: allows restore by file replacement.
    pub data_dir: Option<PathBuf>,
}

/// A MySQL or MariaDB database, dumped with `mariadb-dump`/`mysqldump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlSpec {
    /// `mysql://user@host:port/db`; never with a password.
    pub url: Redacted,
    /// `password-env`/`-file`/`-command`, when the server requires one.
    pub password: Option<SecretSource>,
}

/// Files and directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesSpec {
    /// Absolute, lexically normal, sorted and deduplicated; none inside another.
    pub paths: Vec<PathBuf>,
    /// Glob patterns (globset syntax), already checked to compile.
    pub exclude: Vec<String>,
    /// Do not cross into other mounted file systems.
    pub one_file_system: bool,
    /// `redact = "values"` keeps only the structure of env files.
    pub redact: Redact,
}

/// A Docker volume, found by name through the Docker Engine API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerVolumeSpec {
    /// The volume's name, as `docker volume ls` shows it.
    pub volume: String,
    /// Containers stopped for the backup (and a restore) and started again, in this order;
    /// started again in the reverse order.
    pub stop: Vec<String>,
    /// Containers paused for the backup and unpaused again; stopped for a restore.
    pub pause: Vec<String>,
    /// Glob patterns (globset syntax) of entries to leave out, already checked to compile.
    pub exclude: Vec<String>,
    /// `unix:///path/docker.sock`, `tcp://host:port` or `http://host:port`; otherwise
    /// `DOCKER_HOST`, then `unix:///var/run/docker.sock`.
    pub docker_host: Option<String>,
}

/// How much of each file to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redact {
    /// The whole file.
    #[default]
    None,
    /// `KEY=value` lines keep the key and drop the value: the structure of an env file,
    /// without its secrets.
    Values,
}

/// Any command whose stdout is the backup and whose stdin takes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Shell command writing the backup to stdout; run by the shell, variables and all.
    pub backup: String,
    /// Shell command reading the backup from stdin.
    pub restore: Option<String>,
    /// Name of the artifact in the snapshot; `<asset>.out` unless given.
    pub filename: String,
    /// Where both commands run: the plan file's directory.
    pub workdir: PathBuf,
}

/// Plan-wide defaults an asset inherits.
pub(crate) struct AssetDefaults {
    pub rpo: Duration,
    pub rto: Duration,
    pub rpo_given: bool,
    pub rto_given: bool,
}

pub(crate) fn resolve(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    name: &str,
    config: &AssetConfig,
    defaults: &AssetDefaults,
) -> Result<ResolvedAsset, PlanError> {
    r.name(base, At::Key, name)?;
    let schedule = config
        .schedule
        .as_deref()
        .map(|expr| crate::schedules::cron(r, &base.key("schedule"), expr))
        .transpose()?;
    let checks = config
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            r.non_empty(&base.key("checks").index(i), c)
                .map(str::to_owned)
        })
        .collect::<Result<_, _>>()?;
    Ok(ResolvedAsset {
        name: name.to_owned(),
        spec: spec(r, base, name, config)?,
        priority: config.priority.unwrap_or_default(),
        schedule,
        rpo: r
            .opt_duration(&base.key("rpo"), config.rpo.as_ref())?
            .unwrap_or(defaults.rpo),
        rto: r
            .opt_duration(&base.key("rto"), config.rto.as_ref())?
            .unwrap_or(defaults.rto),
        rpo_given: config.rpo.is_some() || defaults.rpo_given,
        rto_given: config.rto.is_some() || defaults.rto_given,
        retention: retention(r, &base.key("retention"), config.retention.as_ref())?,
        anomaly: anomaly(r, &base.key("anomaly"), config.anomaly.as_ref())?,
        size: size_bounds(r, &base.key("size"), config.size.as_ref())?,
        checks,
    })
}

/// `wal` and `stream-interval` of a cluster.
fn wal_mode(r: &Resolver<'_, '_>, base: &KeyPath, c: &AssetConfig) -> Result<WalMode, PlanError> {
    let every = r.opt_duration(&base.key("stream-interval"), c.stream_interval.as_ref())?;
    match (c.wal, every) {
        (Some(WalConfig::Stream), every) => Ok(WalMode::Stream {
            every: every.unwrap_or(WalMode::STREAM_EVERY),
        }),
        (_, Some(_)) => Err(r
            .error(
                &base.key("stream-interval"),
                "only a streamed WAL has an interval",
            )
            .with_hint("add wal = \"stream\", or remove stream-interval")),
        (_, None) => Ok(WalMode::Archive),
    }
}

fn spec(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    name: &str,
    c: &AssetConfig,
) -> Result<AssetSpec, PlanError> {
    let password = || {
        r.secret_source(
            base,
            "password",
            c.password_env.as_ref(),
            c.password_file.as_ref(),
            c.password_command.as_ref(),
        )
    };
    Ok(match c.kind {
        AssetKind::Postgres => AssetSpec::Postgres(PostgresSpec {
            url: db_url(
                r,
                base,
                c.url.as_deref(),
                &["postgres", "postgresql"],
                "postgres://user@localhost:5432/db",
            )?,
            password: password()?,
            jobs: match c.jobs {
                Some(0) => return Err(r.error(&base.key("jobs"), "must be at least 1")),
                Some(n) => n,
                None => 1,
            },
            globals: c.globals.unwrap_or(false),
        }),
        AssetKind::PostgresCluster => AssetSpec::PostgresCluster(PostgresClusterSpec {
            url: db_url(
                r,
                base,
                c.url.as_deref(),
                &["postgres", "postgresql"],
                "postgres://replicator@localhost:5432/postgres",
            )?,
            password: password()?,
            data_dir: c.data_dir.as_deref().map(|d| r.path(d)),
            wal: wal_mode(r, base, c)?,
        }),
        AssetKind::Sqlite => AssetSpec::Sqlite(SqliteSpec {
            path: match &c.path {
                Some(p) => r.path(r.non_empty(&base.key("path"), p)?),
                None => {
                    return Err(r
                        .error(&base.key("path"), "missing key")
                        .with_hint("path = \"/var/lib/app/app.db\""));
                }
            },
        }),
        AssetKind::Redis => AssetSpec::Redis(RedisSpec {
            url: db_url(
                r,
                base,
                c.url.as_deref(),
                &["redis", "rediss"],
                "redis://localhost:6379",
            )?,
            password: password()?,
            username: c.username.clone(),
            data_dir: c.data_dir.as_deref().map(|d| r.path(d)),
        }),
        AssetKind::Mysql => AssetSpec::Mysql(MysqlSpec {
            url: db_url(
                r,
                base,
                c.url.as_deref(),
                &["mysql", "mariadb"],
                "mysql://user@localhost:3306/db",
            )?,
            password: password()?,
        }),
        AssetKind::Files => AssetSpec::Files(files(r, base, c)?),
        AssetKind::DockerVolume => AssetSpec::DockerVolume(docker_volume(r, base, c)?),
        AssetKind::Command => AssetSpec::Command(CommandSpec {
            backup: match &c.backup {
                Some(b) => r.non_empty(&base.key("backup"), b)?.to_owned(),
                None => {
                    return Err(r
                        .error(&base.key("backup"), "missing key")
                        .with_hint("backup = \"a command writing the backup to stdout\""));
                }
            },
            restore: c
                .restore
                .as_deref()
                .map(|x| r.non_empty(&base.key("restore"), x).map(str::to_owned))
                .transpose()?,
            filename: match &c.filename {
                Some(f) => plain_file_name(r, &base.key("filename"), f)?,
                None => format!("{name}.out"),
            },
            workdir: r.base_dir.clone(),
        }),
    })
}

/// A database URL with one of `schemes`. Shown redacted if ever quoted: it may come from ${VAR}.
fn db_url(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    url: Option<&str>,
    schemes: &[&str],
    example: &str,
) -> Result<Redacted, PlanError> {
    let path = base.key("url");
    let Some(url) = url else {
        return Err(r
            .error(&path, "missing key")
            .with_hint(format!("url = \"{example}\"")));
    };
    let parsed = url::Url::parse(url)
        // Not quoted: a URL that does not parse cannot be redacted reliably.
        .map_err(|e| {
            r.error(&path, format!("invalid URL: {e}"))
                .with_hint(format!("e.g. {example}"))
        })?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(r
            .error(
                &path,
                format!("unsupported URL scheme {:?}", parsed.scheme()),
            )
            .with_hint(format!(
                "use {}://, e.g. {example}",
                schemes.join(":// or ")
            )));
    }
    Ok(Redacted::new(url))
}

fn files(r: &Resolver<'_, '_>, base: &KeyPath, c: &AssetConfig) -> Result<FilesSpec, PlanError> {
    let paths_key = base.key("paths");
    let Some(raw) = &c.paths else {
        return Err(r
            .error(&paths_key, "missing key")
            .with_hint("paths = [\"/srv/data\"]"));
    };
    if raw.is_empty() {
        return Err(r
            .error(&paths_key, "needs at least one path")
            .with_hint("paths = [\"/srv/data\"]"));
    }
    let mut paths: Vec<(PathBuf, usize)> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let p = r.non_empty(&paths_key.index(i), p)?;
        paths.push((r.path(p), i));
    }
    paths.sort();
    paths.dedup_by(|b, a| a.0 == b.0);
    // Sorted, a path's ancestors come right before it, so comparing neighbours is not enough
    // (`/a`, `/a-b`, `/a/c`); check against every earlier path.
    for (j, (inner, index)) in paths.iter().enumerate() {
        if let Some((outer, _)) = paths[..j]
            .iter()
            .find(|(outer, _)| inner.starts_with(outer))
        {
            return Err(r
                .error(
                    &paths_key.index(*index),
                    format!(
                        "{} is inside {}, which is also listed",
                        inner.display(),
                        outer.display()
                    ),
                )
                .with_hint(format!(
                    "list only {}; use exclude to leave parts of it out",
                    outer.display()
                )));
        }
    }
    excludes(r, base, c)?;
    Ok(FilesSpec {
        paths: paths.into_iter().map(|(p, _)| p).collect(),
        exclude: c.exclude.clone(),
        one_file_system: c.one_file_system.unwrap_or(false),
        redact: match c.redact {
            Some(RedactConfig::Values) => Redact::Values,
            None => Redact::None,
        },
    })
}

/// `exclude` patterns, each checked to compile.
fn excludes(r: &Resolver<'_, '_>, base: &KeyPath, c: &AssetConfig) -> Result<(), PlanError> {
    for (i, pattern) in c.exclude.iter().enumerate() {
        globset::Glob::new(pattern).map_err(|e| {
            r.error(
                &base.key("exclude").index(i),
                format!("invalid glob {pattern:?}: {}", e.kind()),
            )
            .with_hint("e.g. \"*.tmp\", \"**/cache/**\"")
        })?;
    }
    Ok(())
}

/// Docker's rule for volume and container names.
#[must_use]
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn docker_volume(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    c: &AssetConfig,
) -> Result<DockerVolumeSpec, PlanError> {
    let key = base.key("volume");
    let Some(volume) = &c.volume else {
        return Err(r
            .error(&key, "missing key")
            .with_hint("volume = \"myproject_data\" (as `docker volume ls` lists it)"));
    };
    if !is_docker_name(volume) {
        return Err(r
            .error(&key, format!("{volume:?} is not a Docker volume name"))
            .with_hint("a name as `docker volume ls` lists it: letters, digits, '_', '.', '-'"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (field, list) in [("stop", &c.stop), ("pause", &c.pause)] {
        for (i, name) in list.iter().flatten().enumerate() {
            let path = base.key(field).index(i);
            if !is_docker_name(name) {
                return Err(r
                    .error(&path, format!("{name:?} is not a container name"))
                    .with_hint("the name `docker ps` shows, e.g. \"myproject-app-1\""));
            }
            if seen.contains(&name.as_str()) {
                return Err(r
                    .error(&path, format!("container {name} is listed twice"))
                    .with_hint("name each container once, in stop or in pause"));
            }
            seen.push(name);
        }
    }
    excludes(r, base, c)?;
    let docker_host = match &c.docker_host {
        None => None,
        Some(h) => {
            let ok = ["unix:///", "tcp://", "http://"]
                .iter()
                .any(|p| h.starts_with(p) && h.len() > p.len());
            if !ok {
                return Err(r
                    .error(
                        &base.key("docker-host"),
                        format!("{h:?} is not a Docker host Lifeboat can reach"),
                    )
                    .with_hint("unix:///var/run/docker.sock, or tcp://127.0.0.1:2375"));
            }
            Some(h.clone())
        }
    };
    Ok(DockerVolumeSpec {
        volume: volume.clone(),
        stop: c.stop.clone().unwrap_or_default(),
        pause: c.pause.clone().unwrap_or_default(),
        exclude: c.exclude.clone(),
        docker_host,
    })
}

/// The artifact's name inside the snapshot: one path component.
fn plain_file_name(r: &Resolver<'_, '_>, path: &KeyPath, name: &str) -> Result<String, PlanError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(r
            .error(path, format!("{name:?} is not a plain file name"))
            .with_hint("write a name without '/', e.g. \"vault.snap\""));
    }
    Ok(name.to_owned())
}

pub(crate) fn retention(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    config: Option<&RetentionConfig>,
) -> Result<Retention, PlanError> {
    let Some(c) = config else {
        return Ok(Retention::default());
    };
    let count = |key: &str, v: Option<&KeepCount>| match v {
        None => Ok(None),
        Some(KeepCount::Number(0)) => Err(r
            .error(&base.key(key), "must be at least 1")
            .with_hint(format!("leave {key} out to keep nothing by that rule"))),
        Some(KeepCount::Number(n)) if *n == Retention::FOREVER => {
            Err(r.error(&base.key(key), "is too large").with_hint(format!(
                "write {key} = \"forever\" to keep one for every period"
            )))
        }
        Some(KeepCount::Number(n)) => Ok(Some(*n)),
        Some(KeepCount::Word(w)) if w == "forever" => Ok(Some(Retention::FOREVER)),
        Some(KeepCount::Word(w)) => Err(r
            .error(
                &base.key(key),
                format!("{w:?} is neither a count nor \"forever\""),
            )
            .with_hint(format!(
                "{key} = 12 keeps twelve, {key} = \"forever\" keeps one for every period"
            ))),
    };
    Ok(Retention {
        last: count("last", c.last.as_ref())?,
        hourly: count("hourly", c.hourly.as_ref())?,
        daily: count("daily", c.daily.as_ref())?,
        weekly: count("weekly", c.weekly.as_ref())?,
        monthly: count("monthly", c.monthly.as_ref())?,
        yearly: count("yearly", c.yearly.as_ref())?,
        within: r.opt_duration(&base.key("within"), c.within.as_ref())?,
    })
}

fn anomaly(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    config: Option<&AnomalyConfig>,
) -> Result<AnomalyThresholds, PlanError> {
    let default = AnomalyThresholds::DEFAULT;
    let Some(c) = config else {
        return Ok(default);
    };
    let below = match c.below {
        Some(b) if !AnomalyThresholds::valid_below(b) => {
            return Err(r
                .error(&base.key("below"), "must be more than 0 and less than 1")
                .with_hint(
                    "a fraction of the average size of the previous snapshots: below = 0.5 reports a snapshot smaller than half of it",
                ));
        }
        Some(b) => b,
        None => default.below(),
    };
    let above = match c.above {
        Some(a) if !AnomalyThresholds::valid_above(a) => {
            return Err(r
                .error(&base.key("above"), "must be more than 1")
                .with_hint(
                    "a multiple of the average size of the previous snapshots: above = 2.0 reports a snapshot more than twice as large",
                ));
        }
        Some(a) => a,
        None => default.above(),
    };
    // Each side was checked on its own, so both together are valid too.
    Ok(AnomalyThresholds::new(below, above).unwrap_or(default))
}

fn size_bounds(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    config: Option<&SizeConfig>,
) -> Result<SizeBounds, PlanError> {
    let Some(c) = config else {
        return Ok(SizeBounds::default());
    };
    let read = |key: &str, v: Option<&String>| {
        v.map(|v| {
            lifeboat_core::parse_size(v).map_err(|e| {
                r.error(&base.key(key), e)
                    .with_hint("decimal units (KB, MB, GB, TB) or binary ones (KiB, MiB, GiB, TiB)")
            })
        })
        .transpose()
    };
    let bounds = SizeBounds {
        min: read("min", c.min.as_ref())?,
        max: read("max", c.max.as_ref())?,
    };
    if let (Some(min), Some(max)) = (bounds.min, bounds.max)
        && min > max
    {
        return Err(r.error(&base.key("max"), "is smaller than min"));
    }
    Ok(bounds)
}
