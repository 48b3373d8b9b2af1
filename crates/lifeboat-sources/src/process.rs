//! Child processes whose output is data: exit status checked at end of stream, stderr kept.

use std::{
    io::{self, Read, Write},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

/// How much of a child's stderr is kept for an error message.
pub const STDERR_TAIL: usize = 2048;

/// Runs `script` with `sh -c` in `dir`, stdin closed or piped, stdout piped, stderr collected.
///
/// # Errors
/// When the shell cannot be started.
pub fn spawn_shell(script: &str, dir: &Path, stdin_piped: bool) -> io::Result<RunningChild> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).current_dir(dir);
    spawn(cmd, stdin_piped)
}

/// Starts `cmd` (a program with its arguments and environment) in its own process group,
/// stdin closed or piped, stdout piped, stderr collected.
///
/// # Errors
/// When the program cannot be started.
pub fn spawn(mut cmd: Command, stdin_piped: bool) -> io::Result<RunningChild> {
    cmd.stdin(if stdin_piped {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Its own process group, so that Lifeboat can stop the whole pipeline it started (a
    // shell and its children) when the stream is abandoned or Lifeboat is interrupted.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn()?;
    register(child.id());
    let stderr = child.stderr.take();
    let tail = Arc::new(Mutex::new(Vec::new()));
    let collector = stderr.map(|mut err| {
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                t.extend_from_slice(&buf[..n]);
                if t.len() > STDERR_TAIL * 2 {
                    let cut = t.len() - STDERR_TAIL;
                    t.drain(..cut);
                }
            }
        })
    });
    Ok(RunningChild {
        child,
        tail,
        collector,
    })
}

/// Process groups of the children now running, so that an interrupted Lifeboat stops them too.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn register(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(pid);
}

fn unregister(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|p| *p != pid);
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Kills every child process group still running. For the interrupt handler: the children
/// run in their own process groups, so a Ctrl-C on Lifeboat does not reach them by itself.
pub fn kill_all() {
    let running = std::mem::take(
        &mut *RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for pid in running {
        kill_group(pid);
    }
}

/// How [`RunningChild::feed`] failed.
#[derive(Debug)]
pub enum Fed<E> {
    /// The feed failed (the child was killed first); with the child's stderr tail.
    Feed(E, String),
    /// The child failed after reading all its input.
    Child(io::Error),
}

impl<E: std::fmt::Display> std::fmt::Display for Fed<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Feed(e, tail) if tail.is_empty() => write!(f, "{e}"),
            Self::Feed(e, tail) => write!(f, "{e} (its stderr: {tail})"),
            Self::Child(e) => write!(f, "{e}"),
        }
    }
}

/// A started child with its stderr being collected.
pub struct RunningChild {
    pub child: Child,
    tail: Arc<Mutex<Vec<u8>>>,
    collector: Option<JoinHandle<()>>,
}

impl RunningChild {
    /// Waits for the child and returns an error carrying the tail of its stderr when it failed.
    ///
    /// # Errors
    /// When the child exits non-zero or is killed.
    pub fn finish(mut self) -> io::Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        unregister(self.child.id());
        if let Some(c) = self.collector.take() {
            let _ = c.join();
        }
        if status.success() {
            return Ok(());
        }
        let tail = self.stderr_tail();
        let how = status.code().map_or_else(
            || "was killed by a signal".to_owned(),
            |c| format!("exited with status {c}"),
        );
        let msg = if tail.is_empty() {
            how
        } else {
            format!("{how}: {tail}")
        };
        Err(io::Error::other(msg))
    }

    /// Lets `feed` write the child's stdin, then waits for it. The child's stdout goes to
    /// `stdout` (a sink, or the user's stderr as progress).
    ///
    /// If `feed` fails, the child is killed before its stdin closes: a restore tool must never
    /// take a cut stream for a complete one.
    ///
    /// # Errors
    /// [`Fed::Feed`] with the feed's error and the child's stderr tail, or [`Fed::Child`] when
    /// the child exits non-zero after a complete feed.
    pub fn feed<E>(
        mut self,
        mut stdout: impl Write + Send + 'static,
        feed: impl FnOnce(&mut dyn Write) -> Result<u64, E>,
    ) -> Result<u64, Fed<E>> {
        let Some(mut stdin) = self.child.stdin.take() else {
            return Err(Fed::Child(io::Error::other(
                "the program's stdin is not piped",
            )));
        };
        let out = self.child.stdout.take();
        let pump = std::thread::spawn(move || {
            if let Some(mut out) = out {
                let _ = io::copy(&mut out, &mut stdout);
            }
        });
        match feed(&mut stdin) {
            Ok(bytes) => {
                drop(stdin);
                let status = self.finish();
                let _ = pump.join();
                status.map(|()| bytes).map_err(Fed::Child)
            }
            Err(e) => {
                // The whole group: in `gunzip | psql` it is psql that must not see an end.
                kill_group(self.child.id());
                drop(stdin);
                let stderr = self.stderr_tail();
                drop(self);
                let _ = pump.join();
                Err(Fed::Feed(e, stderr))
            }
        }
    }

    /// Kills whatever is left of the child's process group (e.g. a process it started in the
    /// background and did not wait for).
    pub fn kill_group(&self) {
        kill_group(self.child.id());
    }

    /// The last bytes the child wrote to stderr, as one trimmed line.
    #[must_use]
    pub fn stderr_tail(&self) -> String {
        let t = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = t.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&t[start..])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A handle on the child's collected stderr that outlives the child: for facts a program
    /// prints there when it ends (`pg_basebackup -v`'s positions).
    #[must_use]
    pub fn stderr_log(&self) -> StderrLog {
        StderrLog(Arc::clone(&self.tail))
    }

    /// The child's stdout as a reader whose end reports the exit status.
    #[must_use]
    pub fn into_reader(mut self) -> ChildReader {
        let stdout = self.child.stdout.take();
        ChildReader {
            stdout,
            child: Some(self),
        }
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        // A child nobody waits for any more (the repository failed, or the read was cut short)
        // is stopped rather than left behind.
        if let Ok(None) = self.child.try_wait() {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
        unregister(self.child.id());
    }
}

/// The last bytes of a child's stderr (see [`RunningChild::stderr_log`]).
#[derive(Clone)]
pub struct StderrLog(Arc<Mutex<Vec<u8>>>);

impl StderrLog {
    /// What was kept, as text.
    #[must_use]
    pub fn text(&self) -> String {
        let t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&t).into_owned()
    }
}

/// Reads a child's stdout; at the end, waits for it and turns a failure into an `io::Error`.
pub struct ChildReader {
    stdout: Option<ChildStdout>,
    child: Option<RunningChild>,
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(out) = self.stdout.as_mut() else {
            return Ok(0);
        };
        let n = out.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.stdout = None;
            if let Some(child) = self.child.take() {
                child.finish()?;
            }
        }
        Ok(n)
    }
}
