//! A throwaway S3-compatible server: `moto_server` from PyPI, one process group
//! per test, killed on drop.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::free_port;
use crate::http::{self, Response, percent_encode};

/// Overrides the program started by [`MotoServer::start`] (default `moto_server`
/// on `PATH`), for a moto installed in a virtualenv.
pub const MOTO_PROGRAM_ENV: &str = "LIFEBOAT_MOTO_SERVER";

const INSTALL_HINT: &str = "hint: pip install 'moto[server]'";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Keeps a probe that connects but gets no answer from outliving `START_TIMEOUT`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// `free_port` can race with other processes; a lost race is retried on a new port.
const PORT_ATTEMPTS: usize = 3;
const LOG_TAIL_BYTES: u64 = 4096;

/// moto treats a request without `Authorization` as anonymous and answers 403
/// for private objects, but it does not verify signatures, so any well-formed
/// header makes the request "authenticated".
const FAKE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
    Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// A running `moto_server` on a free port of 127.0.0.1, serving an empty,
/// in-memory S3 (path-style, region `us-east-1`, any credentials accepted).
///
/// The server runs in its own process group with its output in a log file of a
/// private temp dir. Dropping the value kills the whole group with SIGKILL and
/// reaps the child, so the port is closed once `drop` returns.
///
/// The object helpers (`create_bucket`, `put_object`, ...) speak raw HTTP/1.1
/// so that tests can arrange and inspect the bucket without going through the
/// code under test.
///
/// ```no_run
/// let s3 = lifeboat_testing::MotoServer::start()?;
/// s3.create_bucket("backups")?;
/// // point the code under test at s3.endpoint() with s3.aws_env() ...
/// assert!(s3.list_keys("backups", "snapshots/")?.is_empty());
/// # anyhow::Ok(())
/// ```
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log_path: PathBuf,
    _dir: TempDir,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>` and waits (up to 20 s)
    /// until `GET /` answers.
    ///
    /// # Errors
    ///
    /// When the program is missing, exits early or does not answer in time; the
    /// message carries the tail of the server's log and an install hint.
    pub fn start() -> Result<Self> {
        let program =
            std::env::var_os(MOTO_PROGRAM_ENV).unwrap_or_else(|| OsString::from("moto_server"));
        Self::start_program(&program)
    }

    fn start_program(program: &OsStr) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-moto-")
            .tempdir()
            .context("create temp dir for moto_server")?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            match spawn_and_wait(program, dir.path())? {
                Started::Ready {
                    child,
                    port,
                    log_path,
                } => {
                    return Ok(Self {
                        child,
                        port,
                        log_path,
                        _dir: dir,
                    });
                }
                Started::PortTaken(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("start moto_server: no attempt made")))
    }

    /// The port the server listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`; use path-style addressing.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's combined stdout and stderr, for debugging a failing test.
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Credentials and region for a client of this server (moto accepts any):
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.
    #[must_use]
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates `bucket` (in `us-east-1`). Creating an existing bucket succeeds.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer 200.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        let action = || format!("create bucket {bucket:?} on {}", self.endpoint());
        let target = format!("/{}", percent_encode(bucket, false));
        let resp = self.s3_request("PUT", &target, &[]).with_context(action)?;
        expect_status(&resp, &[200]).with_context(action)
    }

    /// Creates `bucket` with S3 Object Lock on and a default retention of `days` days in
    /// governance mode: every object version written to it cannot be deleted before then.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses either request.
    pub fn create_locked_bucket(&self, bucket: &str, days: u32) -> Result<()> {
        let action = || format!("create locked bucket {bucket:?} on {}", self.endpoint());
        let target = format!("/{}", percent_encode(bucket, false));
        let resp = http::request(
            self.port,
            "PUT",
            &target,
            &[
                ("Authorization", FAKE_AUTHORIZATION),
                ("x-amz-bucket-object-lock-enabled", "true"),
            ],
            b"",
            http::IO_TIMEOUT,
        )
        .with_context(action)?;
        expect_status(&resp, &[200]).with_context(action)?;
        let config = format!(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
             <Mode>GOVERNANCE</Mode><Days>{days}</Days></DefaultRetention></Rule>\
             </ObjectLockConfiguration>"
        );
        let resp = self
            .s3_request("PUT", &format!("{target}?object-lock"), config.as_bytes())
            .with_context(action)?;
        expect_status(&resp, &[200]).with_context(action)
    }

    /// Stores `data` under `key`, replacing any previous object.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer 200 (for example
    /// `NoSuchBucket`).
    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) -> Result<()> {
        let action = || {
            format!(
                "put object {key:?} into bucket {bucket:?} on {}",
                self.endpoint()
            )
        };
        let resp = self
            .s3_request("PUT", &object_target(bucket, key), data)
            .with_context(action)?;
        expect_status(&resp, &[200]).with_context(action)
    }

    /// Returns the content of `key`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer 200 (for example
    /// `NoSuchKey`).
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>> {
        let action = || {
            format!(
                "get object {key:?} from bucket {bucket:?} on {}",
                self.endpoint()
            )
        };
        let resp = self
            .s3_request("GET", &object_target(bucket, key), &[])
            .with_context(action)?;
        expect_status(&resp, &[200]).with_context(action)?;
        Ok(resp.body)
    }

    /// Deletes `key`. Deleting a missing key succeeds, as in S3.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer 204 or 200.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let action = || {
            format!(
                "delete object {key:?} from bucket {bucket:?} on {}",
                self.endpoint()
            )
        };
        let resp = self
            .s3_request("DELETE", &object_target(bucket, key), &[])
            .with_context(action)?;
        expect_status(&resp, &[204, 200]).with_context(action)
    }

    /// Lists every key of `bucket` starting with `prefix` (`""` for all), in
    /// S3's order (lexicographic by UTF-8 bytes), following continuation tokens.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or does not answer 200 (for example
    /// `NoSuchBucket`).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_objects(bucket, prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// As [`MotoServer::list_keys`], each key with the storage class the server recorded
    /// for it (`STANDARD`, `STANDARD_IA`, …).
    ///
    /// # Errors
    ///
    /// As [`MotoServer::list_keys`], or a listing entry without a storage class.
    pub fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let action = || {
            format!(
                "list keys with prefix {prefix:?} in bucket {bucket:?} on {}",
                self.endpoint()
            )
        };
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut target = format!(
                "/{}?list-type=2&prefix={}",
                percent_encode(bucket, false),
                percent_encode(prefix, false)
            );
            if let Some(token) = &token {
                target.push_str("&continuation-token=");
                target.push_str(&percent_encode(token, false));
            }
            let resp = self.s3_request("GET", &target, &[]).with_context(action)?;
            expect_status(&resp, &[200]).with_context(action)?;
            let xml = resp.body_text();
            for entry in xml_elements(&xml, "Contents") {
                let key = xml_elements(entry, "Key")
                    .first()
                    .map(|k| xml_unescape(k))
                    .with_context(|| format!("{}: an entry without a key", action()))?;
                let class = xml_elements(entry, "StorageClass")
                    .first()
                    .map(|c| (*c).to_owned())
                    .with_context(|| format!("{}: {key} has no storage class", action()))?;
                objects.push((key, class));
            }
            let truncated = xml_elements(&xml, "IsTruncated").first() == Some(&"true");
            token = xml_elements(&xml, "NextContinuationToken")
                .first()
                .map(|t| xml_unescape(t));
            if !truncated {
                return Ok(objects);
            }
            if token.is_none() {
                bail!(
                    "{}: listing is truncated but has no NextContinuationToken",
                    action()
                );
            }
        }
    }

    fn s3_request(&self, method: &str, target: &str, body: &[u8]) -> Result<Response> {
        let mut headers = vec![("Authorization", FAKE_AUTHORIZATION)];
        if method == "PUT" && !body.is_empty() {
            // Without it the server may take the body for a form and drop it.
            headers.push(("Content-Type", "application/octet-stream"));
        }
        http::request(self.port, method, target, &headers, body, http::IO_TIMEOUT)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

enum Started {
    Ready {
        child: Child,
        port: u16,
        log_path: PathBuf,
    },
    PortTaken(anyhow::Error),
}

/// Spawns one server on a fresh port and waits until it answers, exits or times out.
fn spawn_and_wait(program: &OsStr, dir: &Path) -> Result<Started> {
    let port = free_port();
    let what = format!("start {} on 127.0.0.1:{port}", program.to_string_lossy());
    let log_path = dir.join(format!("moto-{port}.log"));
    let log = File::create(&log_path)
        .with_context(|| format!("{what}: create log file {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("{what}: clone log file handle"))?;

    let mut child = match Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(dir)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{what}: program not found on PATH (or ${MOTO_PROGRAM_ENV})\n{INSTALL_HINT}");
        }
        Err(e) => return Err(anyhow!(e).context(format!("{what}: spawn\n{INSTALL_HINT}"))),
    };

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("{what}: wait for child"))?
        {
            // Reap any grandchildren the program may have left in its group.
            kill_group(&mut child);
            let tail = log_tail(&log_path);
            let error = anyhow!(
                "{what}: exited with {status} before answering\n--- tail of {} ---\n{tail}\n{INSTALL_HINT}",
                log_path.display()
            );
            if tail.contains("Address already in use") {
                return Ok(Started::PortTaken(error));
            }
            return Err(error);
        }
        if answers_as_s3(port) {
            return Ok(Started::Ready {
                child,
                port,
                log_path,
            });
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            bail!(
                "{what}: no answer to GET / within {} s\n--- tail of {} ---\n{}\n{INSTALL_HINT}",
                START_TIMEOUT.as_secs(),
                log_path.display(),
                log_tail(&log_path)
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// True once `GET /` returns moto's bucket listing, so a stranger that grabbed
/// the port in the meantime is not taken for our server.
fn answers_as_s3(port: u16) -> bool {
    http::request(port, "GET", "/", &[], &[], PROBE_TIMEOUT)
        .is_ok_and(|resp| resp.status == 200 && resp.body_text().contains("ListAllMyBucketsResult"))
}

/// SIGKILLs the child's process group (its pid, via `process_group(0)`) and reaps the child.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // ESRCH only means the group is already gone.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.wait();
}

/// The last few KiB of the log, lossily decoded.
fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
    };
    match read() {
        Ok(tail) if tail.is_empty() => "(empty)".to_owned(),
        Ok(tail) => tail,
        Err(e) => format!("(cannot read log: {e})"),
    }
}

fn object_target(bucket: &str, key: &str) -> String {
    format!(
        "/{}/{}",
        percent_encode(bucket, false),
        percent_encode(key, true)
    )
}

/// Fails with the status and S3 error code (or the start of the body).
fn expect_status(resp: &Response, accepted: &[u16]) -> Result<()> {
    if accepted.contains(&resp.status) {
        return Ok(());
    }
    let body = resp.body_text();
    let detail = match xml_elements(&body, "Code").first() {
        Some(code) => (*code).to_owned(),
        None => body.chars().take(200).collect(),
    };
    bail!("HTTP {} {detail}", resp.status)
}

/// The text content of every `<tag>...</tag>` element, in order. Enough for
/// S3's flat response documents; not an XML parser.
fn xml_elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// Resolves the predefined entities and numeric character references.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            out.push_str(&rest[amp..]);
            return out;
        };
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_names_the_install_command() {
        let err =
            MotoServer::start_program(OsStr::new("lifeboat-no-such-moto-server")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("program not found"), "{msg}");
        assert!(msg.contains("pip install 'moto[server]'"), "{msg}");
    }

    #[test]
    fn early_exit_reports_status_and_log_tail() {
        // `false` ignores its arguments and exits 1 at once, like a broken install.
        let err = MotoServer::start_program(OsStr::new("false")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("exited with exit status: 1"), "{msg}");
        assert!(msg.contains("--- tail of"), "{msg}");
        assert!(msg.contains("hint: pip install"), "{msg}");
    }

    #[test]
    fn extracts_and_unescapes_keys() {
        let xml = "<R><Contents><Key>a/b&amp;c</Key></Contents><Contents><Key>&#233;t&#xE9; &lt;x&gt;</Key></Contents></R>";
        let keys: Vec<String> = xml_elements(xml, "Key")
            .into_iter()
            .map(xml_unescape)
            .collect();
        assert_eq!(keys, ["a/b&c", "été <x>"]);
        assert_eq!(xml_unescape("a & b"), "a & b");
    }
}
