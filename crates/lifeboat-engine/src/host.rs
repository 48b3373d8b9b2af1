//! Who and where: the user and host names that events and the audit log record.

/// This machine's host name; `unknown` if it cannot be read.
#[must_use]
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The user running Lifeboat: the account of the real uid, else `$USER`, else `uid N`.
#[must_use]
pub fn user_name() -> String {
    let uid = nix::unistd::Uid::current();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {uid}"))
}
