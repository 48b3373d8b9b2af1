//! Reading secrets named by the plan: environment, file or command. Values never reach argv
//! or a message.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path, process::Command};

use lifeboat_core::Secret;
use lifeboat_plan::{PasswordSource, ResolvedRepository, SecretSource};

use crate::EngineError;

pub(crate) fn repository_password(repo: &ResolvedRepository) -> Result<Secret, EngineError> {
    let fail = |reason: String, hint: Option<String>| EngineError::Password {
        repo: repo.name.clone(),
        reason,
        hint,
    };
    match &repo.password {
        PasswordSource::Env(var) => read_secret(&SecretSource::Env(var.clone()))
            .map_err(|r| fail(r, Some(format!("export {var}=... before running Lifeboat")))),
        PasswordSource::File(path) => {
            read_secret(&SecretSource::File(path.clone())).map_err(|r| fail(r, None))
        }
        PasswordSource::Command(cmd) => {
            read_secret(&SecretSource::Command(cmd.clone())).map_err(|r| fail(r, None))
        }
        PasswordSource::DefaultFile(path) => read_secret(&SecretSource::File(path.clone()))
            .map_err(|r| {
                fail(
                    r,
                    Some(
                        "run `lifeboat init` first: it creates the repository and its password"
                            .into(),
                    ),
                )
            }),
    }
}

/// Reads one secret. The error says which variable, file or command failed, never the value.
pub fn read_secret(source: &SecretSource) -> Result<Secret, String> {
    let value = match source {
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(v) => v,
            Err(_) => return Err(format!("environment variable {var} is not set")),
        },
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("read {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        SecretSource::Command(cmd) => {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .output()
                .map_err(|e| format!("run password command: {e}"))?;
            if !out.status.success() {
                // Its stderr says why (a locked vault, a missing entry); its stdout, which
                // may hold a secret, is never shown.
                let stderr = String::from_utf8_lossy(&out.stderr);
                let why = stderr.lines().rev().find(|l| !l.trim().is_empty());
                return Err(match why {
                    Some(line) => format!(
                        "password command exited with {}: {}",
                        out.status,
                        line.trim()
                    ),
                    None => format!("password command exited with {}", out.status),
                });
            }
            String::from_utf8_lossy(&out.stdout)
                .trim_end_matches(['\n', '\r'])
                .to_owned()
        }
    };
    if value.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(Secret::new(value))
}

/// Creates the embedded default repository's password file: 32 random bytes as hex, mode 0600,
/// refusing to overwrite an existing one.
pub(crate) fn create_password_file(path: &Path) -> Result<Secret, EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
    }
    let bytes: [u8; 32] = rand::random();
    let password = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EngineError::io("create", path, e))?;
    file.write_all(format!("{password}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| EngineError::io("write", path, e))?;
    Ok(Secret::new(password))
}
