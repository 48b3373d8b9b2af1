//! `command` assets: any command's stdout is the artifact; the restore command reads it on stdin.

use std::{
    io::{self, Write},
    path::PathBuf,
};

use lifeboat_core::{ArtifactData, Payload, SourceFacts, StreamArtifact};

use crate::{
    Source, SourceError,
    process::{self, spawn_shell},
};

#[derive(Debug, Clone)]
pub struct CommandSource {
    pub asset: String,
    /// Shell script whose stdout is the artifact.
    pub backup: String,
    /// Shell script that reads the artifact on stdin.
    pub restore: Option<String>,
    /// Artifact name in the snapshot.
    pub filename: String,
    /// Working directory of both scripts (the plan file's directory).
    pub workdir: PathBuf,
}

impl Source for CommandSource {
    fn preflight(&self) -> Result<(), SourceError> {
        if self.workdir.is_dir() {
            Ok(())
        } else {
            Err(SourceError::Path {
                asset: self.asset.clone(),
                path: self.workdir.clone(),
                reason: "working directory does not exist".into(),
                hint: None,
            })
        }
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let script = self.backup.clone();
        let dir = self.workdir.clone();
        let artifact = StreamArtifact {
            name: self.filename.clone(),
            data: ArtifactData::Stream(Box::new(move || {
                let child = spawn_shell(&script, &dir, false)?;
                Ok(Box::new(child.into_reader()) as Box<dyn io::Read + Send>)
            })),
        };
        Ok((Payload::Streams(vec![artifact]), SourceFacts::default()))
    }

    fn identity(&self) -> String {
        // The program only: arguments may carry addresses or tokens.
        let program = self.backup.split_whitespace().next().unwrap_or_default();
        format!("command {program}")
    }
}

impl CommandSource {
    /// Runs the restore command and lets `feed` write the artifact into its stdin.
    ///
    /// # Errors
    /// When there is no restore command, it cannot start, `feed` fails (the command is then
    /// killed before it sees the end of its input) or it exits non-zero.
    pub fn restore<E: std::fmt::Display>(
        &self,
        feed: impl FnOnce(&mut dyn Write) -> Result<u64, E>,
    ) -> Result<u64, SourceError> {
        let err = |reason: String| SourceError::Command {
            asset: self.asset.clone(),
            what: "the restore command",
            reason,
        };
        let script = self
            .restore
            .as_deref()
            .ok_or_else(|| err("the plan has no `restore` command for this asset".into()))?;
        let child = spawn_shell(script, &self.workdir, true).map_err(|e| err(e.to_string()))?;
        // stdout is not data here: it goes to the user's stderr as progress.
        child.feed(io::stderr(), feed).map_err(|e| match e {
            process::Fed::Feed(e, tail) if !tail.is_empty() => {
                err(format!("{e} (command stderr: {tail})"))
            }
            other => err(other.to_string()),
        })
    }
}

/// Tail length re-exported for messages.
pub const STDERR_TAIL: usize = process::STDERR_TAIL;

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn src(backup: &str, restore: Option<&str>) -> CommandSource {
        CommandSource {
            asset: "vault".into(),
            backup: backup.into(),
            restore: restore.map(Into::into),
            filename: "vault.snap".into(),
            workdir: std::env::temp_dir(),
        }
    }

    fn read_all(s: &CommandSource) -> io::Result<Vec<u8>> {
        let (Payload::Streams(mut streams), _) = s.backup().unwrap() else {
            panic!("a command asset yields one stream");
        };
        let ArtifactData::Stream(open) = streams.remove(0).data else {
            panic!("a command's output is a stream");
        };
        let mut r = open()?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn stdout_is_the_artifact() {
        assert_eq!(read_all(&src("printf 'a\\nb'", None)).unwrap(), b"a\nb");
    }

    #[test]
    fn non_zero_exit_is_an_error_with_stderr_tail() {
        let e = read_all(&src("echo partial; echo 'vault sealed' >&2; exit 3", None)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("exited with status 3"), "{msg}");
        assert!(msg.contains("vault sealed"), "{msg}");
    }

    #[test]
    fn restore_feeds_stdin_and_checks_status() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let s = src("true", Some(&format!("cat > {}", out.display())));
        let n = s
            .restore(|w| w.write_all(b"payload").map(|()| 7u64))
            .unwrap();
        assert_eq!(n, 7);
        assert_eq!(std::fs::read(&out).unwrap(), b"payload");

        let failing = src("true", Some("cat >/dev/null; echo nope >&2; exit 1"));
        let e = failing
            .restore(|w| w.write_all(b"x").map(|()| 1u64))
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn identity_hides_arguments() {
        assert_eq!(
            src(
                "vault operator raft snapshot save -token=abc /dev/stdout",
                None
            )
            .identity(),
            "command vault"
        );
    }
}
