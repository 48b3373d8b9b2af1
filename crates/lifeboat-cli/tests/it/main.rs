//! End-to-end tests of the `lifeboat` binary: real files, real repositories, restic and an S3
//! server on 127.0.0.1. Each test works in its own temp directory.

mod coldstart;
mod command;
mod conformance;
mod copies;
mod daemon;
mod damaged;
mod drill;
mod errors;
mod faults;
mod generated;
mod http_steps;
mod interop;
mod keys;
mod killed;
mod locking;
mod mysql;
mod notify;
mod pick;
mod pitr;
mod plan;
mod postgres;
mod quickstart;
mod redis;
mod retention;
mod roundtrip;
mod runbooks;
mod s3;
mod schedule;
mod sqlite;
mod torture_bitflips;
mod torture_kills;
mod torture_secrets;
mod util;
mod verify;
mod write_path;
