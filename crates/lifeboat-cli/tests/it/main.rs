//! End-to-end tests of the `lifeboat` binary: real files, real repositories, restic and an S3
//! server on 127.0.0.1. Each test works in its own temp directory.

mod command;
mod drill;
mod errors;
mod interop;
mod killed;
mod mysql;
mod postgres;
mod quickstart;
mod redis;
mod retention;
mod roundtrip;
mod s3;
mod sqlite;
mod util;
mod verify;
