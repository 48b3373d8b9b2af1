//! The one place that turns a plan's asset into its source: an exhaustive match over kinds.

use lifeboat_plan::{AssetSpec, Redact, ResolvedAsset};
use lifeboat_sources::{
    Source, SourceError, command::CommandSource, files::FilesSource, sqlite::SqliteSource,
};

pub(crate) fn source_for(asset: &ResolvedAsset) -> Result<Box<dyn Source>, SourceError> {
    match &asset.spec {
        AssetSpec::Files(f) => Ok(Box::new(files_source(&asset.name, f))),
        AssetSpec::Command(c) => Ok(Box::new(command_source(&asset.name, c))),
        AssetSpec::Postgres(p) => Ok(Box::new(crate::postgres::source(&asset.name, p)?)),
        AssetSpec::Sqlite(s) => Ok(Box::new(SqliteSource {
            asset: asset.name.clone(),
            path: s.path.clone(),
        })),
        AssetSpec::Redis(r) => Ok(Box::new(redis_source(&asset.name, r)?)),
        AssetSpec::Mysql(m) => Ok(Box::new(mysql_source(&asset.name, m)?)),
    }
}

pub(crate) fn files_source(name: &str, f: &lifeboat_plan::FilesSpec) -> FilesSource {
    FilesSource {
        asset: name.to_owned(),
        paths: f.paths.clone(),
        exclude: f.exclude.clone(),
        one_file_system: f.one_file_system,
        redact_values: f.redact == Redact::Values,
    }
}

pub(crate) fn command_source(name: &str, c: &lifeboat_plan::CommandSpec) -> CommandSource {
    CommandSource {
        asset: name.to_owned(),
        backup: c.backup.clone(),
        restore: c.restore.clone(),
        filename: c.filename.clone(),
        workdir: c.workdir.clone(),
    }
}

/// The Redis server an asset names, with its password read and a sandbox to count the keys of
/// each RDB it takes.
pub(crate) fn redis_source(
    name: &str,
    spec: &lifeboat_plan::RedisSpec,
) -> Result<lifeboat_sources::redis::RedisSource, SourceError> {
    let fail = |reason: String| SourceError::Command {
        asset: name.to_owned(),
        what: "Redis",
        reason,
    };
    let url = url::Url::parse(spec.url.expose()).map_err(|e| fail(format!("{}: {e}", spec.url)))?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(6379);
    let username = spec
        .username
        .clone()
        .or_else(|| (!url.username().is_empty()).then(|| url.username().to_owned()));
    let password = spec
        .password
        .as_ref()
        .map(crate::secrets::read_secret)
        .transpose()
        .map_err(|reason| fail(format!("read the password: {reason}")))?;
    let count_keys: lifeboat_sources::redis::KeyCounter =
        std::sync::Arc::new(|rdb: &std::path::Path| {
            let sandbox =
                crate::sandbox::RedisSandbox::start(Some(rdb)).map_err(|e| e.to_string())?;
            let mut c =
                lifeboat_sources::resp::Client::connect("127.0.0.1", sandbox.port(), None, None)
                    .map_err(|e| e.to_string())?;
            c.keyspace().map_err(|e| e.to_string())
        });
    Ok(lifeboat_sources::redis::RedisSource {
        asset: name.to_owned(),
        host,
        port,
        username,
        password,
        count_keys: Some(count_keys),
    })
}

/// The database a `mysql` asset names, with its password read.
pub(crate) fn mysql_source(
    name: &str,
    spec: &lifeboat_plan::MysqlSpec,
) -> Result<lifeboat_sources::mysql::MysqlSource, SourceError> {
    mysql_database(name, spec, &spec.url)
}

/// The database at `url` (the asset's own, or a restore's `--to`), logged into with the
/// asset's password. A URL that carries a password is refused: it would show in `ps` and in
/// the shell's history.
pub(crate) fn mysql_database(
    name: &str,
    spec: &lifeboat_plan::MysqlSpec,
    url: &lifeboat_core::Redacted,
) -> Result<lifeboat_sources::mysql::MysqlSource, SourceError> {
    let fail = |reason: String, hint: Option<&str>| SourceError::Server {
        asset: name.to_owned(),
        server: format!("MySQL {url}"),
        reason,
        hint: hint.map(str::to_owned),
    };
    let example = "mysql://user@host:3306/database";
    let parsed = url::Url::parse(url.expose())
        .map_err(|e| fail(format!("invalid URL: {e}"), Some(example)))?;
    if !matches!(parsed.scheme(), "mysql" | "mariadb") {
        return Err(fail(
            format!("unsupported URL scheme {:?}", parsed.scheme()),
            Some(example),
        ));
    }
    if parsed.password().is_some() {
        return Err(fail(
            "the URL holds a password".into(),
            Some(&format!(
                "remove it from the URL: the password comes from assets.{name}'s password-env, password-file or password-command"
            )),
        ));
    }
    let database = percent_decode(parsed.path().trim_start_matches('/'));
    if database.is_empty() || database.contains('/') {
        return Err(fail("the URL names no database".into(), Some(example)));
    }
    let host = parsed
        .host_str()
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let user = (!parsed.username().is_empty()).then(|| percent_decode(parsed.username()));
    let password = spec
        .password
        .as_ref()
        .map(crate::secrets::read_secret)
        .transpose()
        .map_err(|reason| fail(format!("read the password: {reason}"), None))?;
    Ok(lifeboat_sources::mysql::MysqlSource {
        server: lifeboat_sources::mysql::MysqlServer {
            asset: name.to_owned(),
            host,
            port: parsed.port(),
            user,
            password,
        },
        database,
    })
}

/// `%xx` sequences of a URL part as the bytes they stand for.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
