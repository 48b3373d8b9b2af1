//! `[repositories.NAME]`: where snapshots are stored, and how the repository is unlocked.

use std::path::PathBuf;

use indexmap::IndexMap;
use lifeboat_core::{RepoLocation, Retention, S3Location};

use crate::{
    config::{RepositoryConfig, unknown},
    document::At,
    error::PlanError,
    key_path::KeyPath,
    resolve::Resolver,
    secret_source::SecretSource,
    suggest,
};

/// A repository of the plan. The first one is the primary: backups are written there and
/// copied to the repositories that name it in `copy-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRepository {
    /// The key of `[repositories.NAME]`, or `default`.
    pub name: String,
    /// From `url`: a local directory (absolute) or an S3 bucket and prefix.
    pub location: RepoLocation,
    /// Unlocks the repository (restic's repository password).
    pub password: PasswordSource,
    /// Snapshots are copied here from this repository after each backup.
    pub copy_from: Option<String>,
    /// `retention`: the rules `forget` applies in this repository instead of each asset's
    /// own (a copy kept longer, a local repository kept shorter).
    pub retention: Option<Retention>,
    /// True for the repository Lifeboat supplies when the plan has no `[repositories]`.
    pub embedded_default: bool,
    /// Names of the variables holding S3 keys, from `access-key-id-env`/`secret-access-key-env`;
    /// `None` means the standard AWS environment, profile or instance credentials.
    pub s3_credentials: Option<S3CredentialVars>,
}

impl ResolvedRepository {
    /// `object-lock`: how long the bucket keeps every object version, when it locks them.
    #[must_use]
    pub fn object_lock(&self) -> Option<std::time::Duration> {
        match &self.location {
            RepoLocation::S3(s3) => s3.object_lock,
            RepoLocation::Local { .. } => None,
        }
    }
}

/// Environment variable names (not values) for an S3 repository's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3CredentialVars {
    /// From `access-key-id-env`.
    pub access_key_id_env: String,
    /// From `secret-access-key-env`.
    pub secret_access_key_env: String,
}

/// Where the repository password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `password-env`: the variable's name.
    Env(String),
    /// `password-file`: an absolute path.
    File(PathBuf),
    /// `password-command`: a shell command printing the password.
    Command(String),
    /// The embedded default repository's password file, created by `lifeboat init`.
    DefaultFile(PathBuf),
}

impl ResolvedRepository {
    /// The repository used when the plan names none: `.lifeboat/repo` beside the plan, with a
    /// generated password in `.lifeboat/password`, so that a first plan needs no setup.
    pub(crate) fn embedded_default(base_dir: &std::path::Path) -> Self {
        let dir = base_dir.join(".lifeboat");
        Self {
            name: "default".to_owned(),
            location: RepoLocation::Local {
                path: dir.join("repo"),
            },
            password: PasswordSource::DefaultFile(dir.join("password")),
            copy_from: None,
            retention: None,
            embedded_default: true,
            s3_credentials: None,
        }
    }
}

/// Resolves `[repositories]`, in file order, and checks `copy-from` across them.
pub(crate) fn resolve_all(
    r: &Resolver<'_, '_>,
    configs: Option<&IndexMap<String, RepositoryConfig>>,
) -> Result<Vec<ResolvedRepository>, PlanError> {
    let Some(configs) = configs else {
        return Ok(vec![ResolvedRepository::embedded_default(&r.base_dir)]);
    };
    let base = KeyPath::root().key("repositories");
    if configs.is_empty() {
        return Err(r
            .error(&base, "no repository in [repositories]")
            .with_hint("add [repositories.NAME] with url and password-env, or remove [repositories] to use .lifeboat/repo beside the plan"));
    }
    let repos = configs
        .iter()
        .map(|(name, config)| resolve_one(r, &base.key(name), name, config))
        .collect::<Result<Vec<_>, _>>()?;
    check_copy_from(r, &base, &repos)?;
    Ok(repos)
}

fn resolve_one(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    name: &str,
    config: &RepositoryConfig,
) -> Result<ResolvedRepository, PlanError> {
    r.name(base, At::Key, name)?;
    let url_path = base.key("url");
    let Some(url) = &config.url else {
        return Err(r
            .error(&url_path, "missing key")
            .with_hint("url = \"/var/backups/lifeboat\" (a path) or \"s3://bucket/prefix?endpoint=...&region=...\""));
    };
    let location = location(r, &url_path, url)?;
    let password = match r.secret_source(
        base,
        "password",
        config.password_env.as_ref(),
        config.password_file.as_ref(),
        config.password_command.as_ref(),
    )? {
        Some(SecretSource::Env(v)) => PasswordSource::Env(v),
        Some(SecretSource::File(p)) => PasswordSource::File(p),
        Some(SecretSource::Command(c)) => PasswordSource::Command(c),
        None => {
            return Err(r
                .error(base, "missing password source")
                .with_hint("add one of password-env = \"LIFEBOAT_PASSWORD\", password-file = \"/path\" or password-command = \"pass show lifeboat\""));
        }
    };
    let s3_credentials = match (&config.access_key_id_env, &config.secret_access_key_env) {
        (None, None) => None,
        (Some(_), _) | (_, Some(_)) if !matches!(location, RepoLocation::S3(_)) => {
            let key = if config.access_key_id_env.is_some() {
                "access-key-id-env"
            } else {
                "secret-access-key-env"
            };
            return Err(r
                .doc
                .key_error(&base.key(key), "S3 keys apply to s3:// repositories only")
                .with_hint("remove it, or change url to s3://bucket/prefix"));
        }
        (Some(id), Some(secret)) => Some(S3CredentialVars {
            access_key_id_env: r.non_empty(&base.key("access-key-id-env"), id)?.to_owned(),
            secret_access_key_env: r
                .non_empty(&base.key("secret-access-key-env"), secret)?
                .to_owned(),
        }),
        (Some(_), None) => {
            return Err(r
                .error(&base.key("secret-access-key-env"), "missing key")
                .with_hint("access-key-id-env and secret-access-key-env go together"));
        }
        (None, Some(_)) => {
            return Err(r
                .error(&base.key("access-key-id-env"), "missing key")
                .with_hint("access-key-id-env and secret-access-key-env go together"));
        }
    };
    let mut location = location;
    if let Some(period) = &config.object_lock {
        let path = base.key("object-lock");
        let RepoLocation::S3(s3) = &mut location else {
            return Err(r
                .doc
                .key_error(&path, "Object Lock is a feature of S3 buckets")
                .with_hint("remove object-lock, or make this an s3:// repository whose bucket has Object Lock on"));
        };
        if config.copy_from.is_none() {
            return Err(r
                .doc
                .key_error(
                    &path,
                    "only a copy can be locked: the primary forgets and prunes what backups write",
                )
                .with_hint("lock an off-site copy: add copy-from = \"NAME\" naming the primary"));
        }
        let days = r.opt_duration(&path, Some(period))?.unwrap_or_default();
        if days.as_secs() == 0 || days.as_secs() % 86_400 != 0 {
            return Err(r
                .error(&path, "Object Lock keeps objects for whole days")
                .with_hint("give the bucket's default retention, e.g. object-lock = \"30d\""));
        }
        s3.object_lock = Some(days);
    }
    Ok(ResolvedRepository {
        name: name.to_owned(),
        location,
        password,
        copy_from: config.copy_from.clone(),
        retention: config
            .retention
            .as_ref()
            .map(|c| crate::asset::retention(r, &base.key("retention"), Some(c)))
            .transpose()?,
        embedded_default: false,
        s3_credentials,
    })
}

fn location(r: &Resolver<'_, '_>, path: &KeyPath, url: &str) -> Result<RepoLocation, PlanError> {
    let url = r.non_empty(path, url)?;
    if url.starts_with("s3://") {
        return parse_s3(url)
            .map(RepoLocation::S3)
            .map_err(|(message, hint)| r.error(path, message).or_hint(hint));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(r
            .error(path, format!("unsupported repository URL scheme {scheme:?}"))
            .with_hint("use a path (absolute, or relative to the plan file) or s3://bucket/prefix?endpoint=...&region=..."));
    }
    Ok(RepoLocation::Local { path: r.path(url) })
}

/// Query parameters an `s3://` URL may carry.
const S3_PARAMS: &[&str] = &[
    "endpoint",
    "region",
    "path-style",
    "storage-class",
    "timeout",
];

/// Parses `s3://bucket/prefix?endpoint=..&region=..&path-style=true|false&storage-class=..
/// &timeout=..`.
/// Errors are (message, hint) and never quote the URL, which may have come from `${VAR}`.
fn parse_s3(raw: &str) -> Result<S3Location, (String, Option<String>)> {
    let url = url::Url::parse(raw).map_err(|e| (format!("invalid S3 URL: {e}"), None))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            "an S3 URL may not contain credentials".to_owned(),
            Some(
                "use access-key-id-env and secret-access-key-env, or the standard AWS environment"
                    .to_owned(),
            ),
        ));
    }
    let bucket = url.host_str().unwrap_or_default().to_owned();
    if bucket.is_empty() {
        return Err((
            "S3 URL has no bucket".to_owned(),
            Some("write s3://BUCKET/prefix".to_owned()),
        ));
    }
    if url.port().is_some() {
        return Err((
            "S3 URL may not have a port; the bucket goes after s3://".to_owned(),
            Some("put the server in ?endpoint=http://host:port".to_owned()),
        ));
    }
    if url.fragment().is_some() {
        return Err(("S3 URL may not have a #fragment".to_owned(), None));
    }
    let mut location = S3Location {
        bucket,
        prefix: url.path().trim_matches('/').to_owned(),
        endpoint: None,
        region: None,
        path_style: false,
        storage_class: None,
        timeout: None,
        object_lock: None,
    };
    let mut path_style = None;
    let mut seen = Vec::new();
    for (name, value) in url.query_pairs() {
        if seen.contains(&name) {
            return Err((format!("S3 URL query parameter {name:?} given twice"), None));
        }
        seen.push(name.clone());
        let value = value.into_owned();
        match name.as_ref() {
            "endpoint" => {
                let ok = url::Url::parse(&value).is_ok_and(|e| {
                    matches!(e.scheme(), "http" | "https") && e.host_str().is_some()
                });
                if !ok {
                    return Err((
                        "S3 endpoint must be an http:// or https:// URL".to_owned(),
                        Some("e.g. endpoint=https://nyc3.digitaloceanspaces.com".to_owned()),
                    ));
                }
                location.endpoint = Some(value.trim_end_matches('/').to_owned());
            }
            "region" => location.region = Some(value),
            "storage-class" => location.storage_class = Some(value),
            "timeout" => match humantime::parse_duration(&value) {
                Ok(t) if t >= std::time::Duration::from_secs(1) => location.timeout = Some(t),
                _ => {
                    return Err((
                        format!("S3 URL timeout must be a duration of 1s or more, found {value:?}"),
                        Some("e.g. timeout=2m".to_owned()),
                    ));
                }
            },
            "path-style" => {
                path_style = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err((
                            format!("S3 URL path-style must be true or false, found {value:?}"),
                            None,
                        ));
                    }
                });
            }
            other => {
                // A name is quoted only when it looks like one: a pasted token is not echoed.
                let looks_like_a_name = other.len() <= 32
                    && other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                let what = if looks_like_a_name {
                    format!("unknown query parameter {other:?} in S3 URL")
                } else {
                    "unknown query parameter in S3 URL".to_owned()
                };
                let (message, _) = unknown(&what, other, S3_PARAMS);
                let hint = format!(
                    "known parameters: {}",
                    suggest::list(S3_PARAMS.iter().copied())
                );
                return Err((message, Some(hint)));
            }
        }
    }
    // Custom endpoints (MinIO, Garage, moto) mostly lack wildcard DNS for bucket subdomains.
    location.path_style = path_style.unwrap_or(location.endpoint.is_some());
    Ok(location)
}

fn check_copy_from(
    r: &Resolver<'_, '_>,
    base: &KeyPath,
    repos: &[ResolvedRepository],
) -> Result<(), PlanError> {
    let names: Vec<&str> = repos.iter().map(|x| x.name.as_str()).collect();
    for repo in repos {
        let Some(from) = &repo.copy_from else {
            continue;
        };
        let path = base.key(&repo.name).key("copy-from");
        if from == &repo.name {
            return Err(r
                .error(&path, "a repository cannot copy from itself")
                .with_hint("name the repository whose snapshots should be copied here"));
        }
        if !names.contains(&from.as_str()) {
            let (message, hint) = unknown(&format!("no repository named {from:?}"), from, &names);
            return Err(r.error(&path, message).or_hint(hint));
        }
        // Follow the chain: a cycle would copy snapshots around forever.
        let mut chain = vec![repo.name.as_str()];
        let mut next = Some(from.as_str());
        while let Some(name) = next {
            if chain.contains(&name) {
                chain.push(name);
                return Err(r
                    .error(
                        &path,
                        format!("copy-from forms a cycle: {}", chain.join(" <- ")),
                    )
                    .with_hint("copies flow one way, from the primary outwards"));
            }
            chain.push(name);
            next = repos
                .iter()
                .find(|x| x.name == name)
                .and_then(|x| x.copy_from.as_deref());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let l = parse_s3("s3://dev-tools-backups/lifeboat?endpoint=https://nyc3.digitaloceanspaces.com&region=nyc3").unwrap();
        assert_eq!(
            l,
            S3Location {
                bucket: "dev-tools-backups".into(),
                prefix: "lifeboat".into(),
                endpoint: Some("https://nyc3.digitaloceanspaces.com".into()),
                region: Some("nyc3".into()),
                path_style: true,
                storage_class: None,
                timeout: None,
                object_lock: None,
            }
        );
        let l = parse_s3("s3://b/a/b/?region=eu-west-1&storage-class=STANDARD_IA").unwrap();
        assert_eq!((l.prefix.as_str(), l.path_style), ("a/b", false));
        assert_eq!(l.storage_class.as_deref(), Some("STANDARD_IA"));
        let l = parse_s3("s3://b?endpoint=http://127.0.0.1:9000&path-style=false").unwrap();
        assert_eq!((l.prefix.as_str(), l.path_style), ("", false));
        assert_eq!(l.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let l = parse_s3("s3://b?timeout=2m").unwrap();
        assert_eq!(l.timeout, Some(std::time::Duration::from_secs(120)));
    }

    #[test]
    fn refuses_bad_s3_urls() {
        let msg = |u: &str| parse_s3(u).unwrap_err();
        // Something pasted where a parameter belongs may be a token: never echoed.
        let token = "AKIAEXAMPLE/tok3n+S3CR3T-value-that-is-long";
        let (message, _) = msg(&format!("s3://b/p?{token}"));
        assert_eq!(message, "unknown query parameter in S3 URL");
        assert_eq!(
            msg("s3://b/p?regoin=x"),
            (
                "unknown query parameter \"regoin\" in S3 URL, did you mean region?".into(),
                Some(
                    "known parameters: endpoint, region, path-style, storage-class, timeout".into()
                )
            )
        );
        assert_eq!(
            msg("s3://b/p?colour=x").1.as_deref(),
            Some("known parameters: endpoint, region, path-style, storage-class, timeout")
        );
        assert_eq!(msg("s3:///p").0, "S3 URL has no bucket");
        assert_eq!(
            msg("s3://b?timeout=soon").0,
            "S3 URL timeout must be a duration of 1s or more, found \"soon\""
        );
        assert_eq!(
            msg("s3://b?endpoint=ftp://x").0,
            "S3 endpoint must be an http:// or https:// URL"
        );
        assert_eq!(
            msg("s3://b?path-style=yes").0,
            "S3 URL path-style must be true or false, found \"yes\""
        );
        assert_eq!(
            msg("s3://b?region=a&region=b").0,
            "S3 URL query parameter \"region\" given twice"
        );
        assert_eq!(
            msg("s3://AKIA@b/p").0,
            "an S3 URL may not contain credentials"
        );
    }
}
