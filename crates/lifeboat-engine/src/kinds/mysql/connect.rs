//! Connecting to the database a `mysql` asset (or a restore's `--to`) names.

use lifeboat_plan::MysqlSpec;
use lifeboat_sources::{SourceError, mysql::MysqlSource};

/// The database at `url` (the asset's own, or a restore's `--to`), logged into with the
/// asset's password. A URL that carries a password is refused: it would show in `ps` and in
/// the shell's history.
pub(super) fn mysql_database(
    name: &str,
    spec: &MysqlSpec,
    url: &lifeboat_core::Redacted,
) -> Result<MysqlSource, SourceError> {
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
    Ok(MysqlSource {
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
