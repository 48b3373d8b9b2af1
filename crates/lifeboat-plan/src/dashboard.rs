//! `[dashboard]`: who may read the daemon's web pages and who may act on them.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::{
    document::At, error::PlanError, key_path::KeyPath, resolve::Resolver,
    secret_source::SecretSource,
};

/// `[dashboard]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct DashboardConfig {
    pub login: Option<Login>,
    #[serde(default)]
    pub users: IndexMap<String, UserConfig>,
}

/// `[dashboard.users.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct UserConfig {
    pub role: Option<Role>,
    pub password_hash_env: Option<String>,
    pub password_hash_file: Option<String>,
    pub password_hash_command: Option<String>,
}

/// When the dashboard asks who is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Login {
    /// On loopback anyone may read without logging in (acting still needs a login); on any
    /// other address every page needs one.
    #[default]
    OffLoopback,
    /// Every page needs a login, on loopback too (a shared host).
    Always,
}

/// What a dashboard user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads every page; starts nothing.
    Viewer,
    /// Also starts backups, drills and runbooks.
    Operator,
}

impl Role {
    /// The name used in `role = "..."`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

/// A dashboard user: a name, a role and where the Argon2 hash of the password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardUser {
    pub name: String,
    pub role: Role,
    /// A PHC string (`$argon2id$...`), from `lifeboat hash-password`.
    pub password_hash: SecretSource,
}

/// `[dashboard]` with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedDashboard {
    pub login: Login,
    /// In file order; names are unique (they are table keys).
    pub users: Vec<DashboardUser>,
}

pub(crate) fn resolve(
    r: &Resolver<'_, '_>,
    config: Option<&DashboardConfig>,
) -> Result<ResolvedDashboard, PlanError> {
    let Some(c) = config else {
        return Ok(ResolvedDashboard::default());
    };
    let base = KeyPath::root().key("dashboard").key("users");
    let mut users = Vec::with_capacity(c.users.len());
    for (name, u) in &c.users {
        let path = base.key(name);
        // No user can be called `token` (the API token's login): the secrets pass refuses a
        // key of that name anywhere in the plan before this runs.
        r.name(&path, At::Key, name)?;
        let Some(role) = u.role else {
            return Err(r
                .error(&path.key("role"), "missing key")
                .with_hint("role = \"viewer\" (reads only) or \"operator\" (may start jobs)"));
        };
        let Some(password_hash) = r.secret_source(
            &path,
            "password-hash",
            u.password_hash_env.as_ref(),
            u.password_hash_file.as_ref(),
            u.password_hash_command.as_ref(),
        )?
        else {
            return Err(r
                .error(&path.key("password-hash-file"), "missing key")
                .with_hint(
                    "keep the output of `lifeboat hash-password` in a file, the environment or a \
                     command and name it with password-hash-file, -env or -command",
                ));
        };
        users.push(DashboardUser {
            name: name.clone(),
            role,
            password_hash,
        });
    }
    Ok(ResolvedDashboard {
        login: c.login.unwrap_or_default(),
        users,
    })
}
