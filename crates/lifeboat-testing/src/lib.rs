//! Dev-only helpers for Lifeboat's integration tests.
//!
//! Tests here run against real servers, never mocks. This crate offers:
//!
//! - [`MotoServer`]: a throwaway S3-compatible server (`moto_server`) on a free
//!   loopback port, with a tiny raw-HTTP client for arranging and inspecting
//!   buckets (`create_bucket`, `put_object`, `get_object`, `list_keys`, ...). moto
//!   accepts any key.
//! - [`SigningS3`]: an S3 server that checks every request's signature (`s3s-fs`), so
//!   that a wrong key fails a test.
//! - [`write_fixture_tree`] and [`write_large_file`]: source trees that exercise
//!   the awkward cases of a file backup (unicode names, symlinks, modes, mtimes,
//!   empty files, incompressible data).
//! - [`tree_digest`] and [`compare_trees`]: prove that a restored tree equals the
//!   original byte for byte, with a readable list of differences when it does not.
//! - [`FaultProxy`]: a TCP proxy in front of a real server that resets, cuts, delays and
//!   answers 500 at set rates, for proving that a backup survives a flaky network.
//! - [`DockerStandIn`]: the Docker Engine API's documented answers on a unix socket, with
//!   containers that are real processes writing into their volumes (no Docker daemon runs here).
//! - [`free_port`]: a loopback port nobody listens on (yet).
//! - [`Receiver`]: a local HTTP server that keeps what notifiers send it; [`http_request`]
//!   to talk to the daemon.
//! - [`sandbox`]: Lifeboat's own scratch servers (PostgreSQL, Redis, MariaDB; the
//!   `lifeboat-sandbox` crate), the same code its drills use, on 127.0.0.1 at free ports in temporary directories, removed when dropped.
//!
//! Helpers that only arrange a test (fixtures, digests) panic with the path in
//! the message instead of returning errors: a failing arrangement is a failing test.

mod docker_api;
mod fault;
mod fixture;
mod http;
mod moto;
mod receiver;
mod signing_s3;
mod tree;

pub use docker_api::{DockerStandIn, StandInContainer};
pub use fault::{FaultCounts, FaultProxy, Faults};
pub use fixture::{FIXTURE_OLD_MTIME, write_fixture_tree, write_large_file};
/// Lifeboat's sandboxes, re-exported so tests start servers exactly as drills do.
pub use lifeboat_sandbox as sandbox;
pub use moto::{MOTO_PROGRAM_ENV, MotoServer};
pub use receiver::{Received, Receiver};
pub use signing_s3::{S3S_PROGRAM_ENV, SigningS3};
pub use tree::{CompareOpts, EntryDigest, EntryKind, compare_trees, tree_digest};

use std::net::{Ipv4Addr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and dropping the listener, so another
/// process may take it before the caller binds it; callers that start a server
/// on it should be ready to retry (as [`MotoServer::start`] does).
///
/// # Panics
///
/// When the loopback interface cannot be bound at all.
#[must_use]
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0 to find a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("read the address of a bound listener: {e}"))
        .port()
}

/// One HTTP/1.1 request to `127.0.0.1:port` (no TLS): the status and the body as text. For
/// tests that talk to a server Lifeboat runs (the daemon).
///
/// # Errors
/// The connection or the exchange failed.
pub fn http_request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let r = http::request(port, method, target, headers, body, http::IO_TIMEOUT)?;
    Ok((r.status, r.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port from free_port can be bound");
    }
}
