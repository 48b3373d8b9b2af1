//! Who is looking at the dashboard: sessions, logins, roles and CSRF tokens.
//!
//! - On loopback with `login = "off-loopback"` (the default) anyone may read without a
//!   login, as `anonymous` with the viewer role; acting always needs a login.
//! - A login is a dashboard user's name and password (checked against the Argon2 hash the
//!   plan's secret source holds), or an empty name and the daemon's API token (the user
//!   `token`, an operator).
//! - A session is a random id in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when the
//!   login came through TLS), kept in memory for 12 hours; each session has its own CSRF
//!   token, which every form that acts carries and every action checks.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};
use lifeboat_plan::{Login, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::state::{AppState, lock};

/// The session cookie's name.
pub const COOKIE: &str = "lifeboat_session";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; the oldest goes first beyond this.
const MAX_SESSIONS: usize = 1000;

/// Someone looking at the dashboard.
#[derive(Debug, Clone)]
pub struct Who {
    pub user: String,
    pub role: Role,
    /// The session's CSRF token; `None` for an anonymous reader, who cannot act.
    pub csrf: Option<String>,
}

impl Who {
    /// May start jobs.
    #[must_use]
    pub fn operator(&self) -> bool {
        self.role == Role::Operator && self.csrf.is_some()
    }

    fn anonymous() -> Self {
        Self {
            user: "anonymous".to_owned(),
            role: Role::Viewer,
            csrf: None,
        }
    }
}

#[derive(Debug)]
struct Session {
    user: String,
    role: Role,
    csrf: String,
    expires: Instant,
}

/// The daemon's sessions, by the SHA-256 of their id (the id itself is kept nowhere).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<[u8; 32], Session>>);

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session for `user`; returns its id (the cookie's value).
    pub fn open(&self, user: &str, role: Role) -> String {
        let id = random_token();
        let mut map = lock(&self.0);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Session {
                user: user.to_owned(),
                role,
                csrf: random_token(),
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    fn get(&self, id: &str) -> Option<Who> {
        let map = lock(&self.0);
        map.get(&key(id))
            .filter(|s| s.expires > Instant::now())
            .map(|s| Who {
                user: s.user.clone(),
                role: s.role,
                csrf: Some(s.csrf.clone()),
            })
    }

    /// Ends the session `id`.
    pub fn close(&self, id: &str) {
        lock(&self.0).remove(&key(id));
    }
}

/// The session id the request's cookie carries.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Who sent the request: a session's user, an anonymous reader where the plan allows one,
/// or nobody (the caller sends them to the login page).
pub fn who(state: &AppState, headers: &HeaderMap) -> Option<Who> {
    if let Some(w) = session_id(headers).and_then(|id| state.0.sessions.get(&id)) {
        return Some(w);
    }
    let open =
        !state.0.token_everywhere && state.engine().plan().dashboard.login == Login::OffLoopback;
    open.then(Who::anonymous)
}

/// Handlers take a [`Who`]: someone the dashboard may show pages to. Anyone else is sent to
/// the login page.
impl axum::extract::FromRequestParts<AppState> for Who {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        who(state, &parts.headers)
            .ok_or_else(|| axum::response::Redirect::to("/login").into_response())
    }
}

/// Whether `given` is the CSRF token of `who`'s session, compared in constant time.
#[must_use]
pub fn csrf_ok(who: &Who, given: Option<&str>) -> bool {
    match (&who.csrf, given) {
        (Some(expected), Some(given)) => same(expected, given),
        _ => false,
    }
}

/// Equal strings, compared as SHA-256 digests in constant time.
#[must_use]
pub fn same(a: &str, b: &str) -> bool {
    let a = Sha256::digest(a.as_bytes());
    let b = Sha256::digest(b.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The cookie that carries session `id`; `Secure` when the login came through TLS.
#[must_use]
pub fn cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The cookie that ends a session in the browser.
#[must_use]
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The request came through TLS: a proxy in front of the daemon says so.
#[must_use]
pub fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Checks a login on a blocking thread (Argon2 is slow on purpose). Returns the user and
/// role, or `None`; why a login failed is logged, never shown, and never names the secret.
pub fn check_login(state: &AppState, name: &str, password: &str) -> Option<(String, Role)> {
    let name = name.trim();
    if name.is_empty() || name == "token" {
        let token = state.0.token.as_ref()?;
        return same(password.trim(), token.expose()).then(|| ("token".to_owned(), Role::Operator));
    }
    let engine = state.engine();
    let user = engine
        .plan()
        .dashboard
        .users
        .iter()
        .find(|u| u.name == name)?;
    let hash = match lifeboat_engine::read_secret(&user.password_hash) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(user = %name, "dashboard login: read the password hash: {e}");
            return None;
        }
    };
    let parsed = match argon2::PasswordHash::new(hash.expose()) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(user = %name, "dashboard login: the password hash is not a PHC string ({e}); make it with `lifeboat hash-password`");
            return None;
        }
    };
    use argon2::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .ok()
        .map(|()| (user.name.clone(), user.role))
}

/// The Argon2id hash of `password` as a PHC string, for `lifeboat hash-password`.
///
/// # Errors
/// Argon2 refuses the input (a password longer than it takes).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        use argon2::PasswordVerifier;
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        let parsed = argon2::PasswordHash::new(&phc).unwrap();
        let a = argon2::Argon2::default();
        assert!(a.verify_password(b"correct horse", &parsed).is_ok());
        assert!(a.verify_password(b"correct horsf", &parsed).is_err());
    }

    #[test]
    fn sessions_carry_their_user_and_end_when_closed() {
        let s = Sessions::default();
        let id = s.open("alice", Role::Operator);
        let who = s.get(&id).unwrap();
        assert_eq!(who.user, "alice");
        assert!(who.operator());
        assert!(csrf_ok(&who, who.csrf.as_deref()));
        assert!(!csrf_ok(&who, Some("forged")));
        assert!(!csrf_ok(&who, None));
        assert!(s.get("not-a-session").is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=1; {COOKIE}=abc; b=2").parse().unwrap(),
        );
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        let c = cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!cookie("abc", false).contains("Secure"));
    }
}
