//! `lifeboat key` and `lifeboat hash-password`: a new password comes from `--new-password-file` or is typed on a terminal
//! (twice, not echoed), never from an argument; the key list as a table or JSON.

use std::{
    io::{BufRead, IsTerminal, Write},
    os::fd::AsFd,
    path::Path,
};

use lifeboat_core::{Exit, Secret};
use lifeboat_repo::KeyInfo;
use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};

use crate::Failure;

fn fail(message: String, hint: Option<&str>) -> Failure {
    Failure {
        message,
        hint: hint.map(str::to_owned),
        code: Exit::Error as u8,
    }
}

/// The new password: the file's first line, or typed twice on the terminal.
pub fn new_password(file: Option<&Path>) -> Result<Secret, Failure> {
    let password = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                fail(
                    format!("read the new password from {}: {e}", path.display()),
                    None,
                )
            })?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        None if std::io::stdin().is_terminal() => {
            let first = prompt("New password: ")?;
            if prompt("Again: ")? != first {
                return Err(fail(
                    "the two passwords differ".into(),
                    Some("type the same password twice"),
                ));
            }
            first
        }
        None => {
            return Err(fail(
                "a new password is needed, and stdin is not a terminal to type it on".into(),
                Some("give it in a file: --new-password-file FILE (mode 0600, removed afterwards)"),
            ));
        }
    };
    if password.is_empty() {
        return Err(fail("the new password is empty".into(), None));
    }
    Ok(Secret::new(password))
}

/// `lifeboat hash-password`: the Argon2 hash of a password typed twice or read from a file,
/// on stdout; the password itself goes nowhere.
pub fn print_password_hash(file: Option<&Path>) -> Result<u8, Failure> {
    let password = new_password(file)?;
    let hash = lifeboat_server::hash_password(password.expose())
        .map_err(|e| fail(format!("hash the password: {e}"), None))?;
    println!("{hash}");
    Ok(Exit::Ok as u8)
}

/// One line read from the terminal with echo off.
fn prompt(question: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let saved = tcgetattr(fd).map_err(|e| fail(format!("read the terminal: {e}"), None))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    tcsetattr(fd, SetArg::TCSANOW, &quiet)
        .map_err(|e| fail(format!("read the terminal: {e}"), None))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(fd, SetArg::TCSANOW, &saved);
    eprintln!();
    read.map_err(|e| fail(format!("read the terminal: {e}"), None))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// `kit --include-password` without `--yes`: the operator types `yes` on a terminal.
pub fn confirm_passwords_in_kit() -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            "kit --include-password puts every repository password in the files, in clear".into(),
            Some(
                "add --yes to confirm, or leave the passwords out: the kit says where each comes from",
            ),
        ));
    }
    eprint!("The kit will hold every repository password in clear. Type yes to go on: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(fail("not confirmed: no kit written".into(), None))
    }
}

/// `key list`.
pub fn list(keys: &[KeyInfo], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(keys).unwrap_or_default());
        return;
    }
    println!("{:<10} {:<8} {:<30} CREATED", "ID", "CURRENT", "MADE BY");
    for k in keys {
        let by = match (&k.username, &k.hostname) {
            (Some(u), Some(h)) => format!("{u}@{h}"),
            (Some(u), None) => u.clone(),
            (None, Some(h)) => format!("@{h}"),
            (None, None) => "-".to_owned(),
        };
        println!(
            "{:<10} {:<8} {:<30} {}",
            &k.id[..8.min(k.id.len())],
            if k.current { "*" } else { "" },
            by,
            k.created.as_deref().unwrap_or("-")
        );
    }
}
