//! An S3 server that checks every request's signature: `s3s-fs` from crates.io, one process
//! per test on a free loopback port, its buckets directories of a private temp dir. moto
//! accepts any key; against this server a wrong key is a failed request, so a test that
//! passes proves the keys Lifeboat sent were the right ones.

use std::{
    ffi::OsString,
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::free_port;

/// Overrides the program [`SigningS3::start`] runs (default `s3s-fs` on `PATH`).
pub const S3S_PROGRAM_ENV: &str = "LIFEBOAT_S3S_FS";
const INSTALL_HINT: &str =
    "hint: cargo install s3s-fs@0.14.1 --features binary --locked (bash .ci/run does it)";

/// A running `s3s-fs` with one access key and secret, killed when dropped.
#[derive(Debug)]
pub struct SigningS3 {
    child: Child,
    port: u16,
    access_key: String,
    secret_key: String,
    dir: TempDir,
}

impl SigningS3 {
    /// Starts the server with a random key pair and waits (up to 20 s) until it listens.
    ///
    /// # Errors
    /// When the program is missing or exits before it listens; the message carries its log
    /// and an install hint.
    pub fn start() -> Result<Self> {
        let program = std::env::var_os(S3S_PROGRAM_ENV).unwrap_or_else(|| OsString::from("s3s-fs"));
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-s3s-")
            .tempdir()
            .context("create temp dir for s3s-fs")?;
        let root = dir.path().join("data");
        fs::create_dir_all(&root).context("create the server's root")?;
        let suffix: u64 = rand::random();
        let access_key = format!("LBTEST{suffix:016X}");
        let secret_key = format!("lb-test-secret-{:016x}", rand::random::<u64>());
        let port = free_port();
        let log = dir.path().join("s3s-fs.log");
        let child = Command::new(&program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log)?)
            .stderr(fs::File::create(&log)?)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => bail!("start {}: {e}\n{INSTALL_HINT}", program.to_string_lossy()),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "s3s-fs exited with {status} before listening: {}\n{INSTALL_HINT}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("s3s-fs did not listen on 127.0.0.1:{port} within 20 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            port,
            access_key,
            secret_key,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The right keys, as the AWS environment variables.
    #[must_use]
    pub fn aws_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ]
    }

    #[must_use]
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    #[must_use]
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Creates `bucket` (a directory of the server's root).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        fs::create_dir_all(self.root().join(bucket)).context("create bucket directory")
    }

    /// Every object key of `bucket` under `prefix`, sorted, read from the server's files
    /// (not through the code under test).
    #[must_use]
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let base = self.root().join(bucket);
        let mut keys: Vec<String> = walkdir::WalkDir::new(&base)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| key_of(&base, e.path()))
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        keys
    }
}

/// An object's key: its path below the bucket's directory (s3s-fs keeps its own metadata
/// outside the bucket directories).
fn key_of(base: &Path, path: &Path) -> Option<String> {
    Some(path.strip_prefix(base).ok()?.to_str()?.to_owned())
}

impl Drop for SigningS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
