//! `postgres` assets: `pg_dump` of one database in a snapshot Lifeboat exported itself, so the
//! rows it counts are exactly the rows the dump holds; restore through a new database that is
//! checked before it replaces anything.
//!
//! Lifeboat talks to the server through `psql` and the dump tools, never a client library of its
//! own: they read the same `PGPASSWORD`, `~/.pgpass`, `PGSSLMODE` and service files, so whatever
//! works for `pg_dump` works for Lifeboat. Passwords reach them through the environment only.
//!
//! The module is split by role: [`Conn`] (where a database lives, `conn.rs`), the client
//! programs and what their failures mean (`client.rs`), the `psql` [`Session`] and SQL quoting
//! (`session.rs`), the tables a dump holds and their row counts (`tables.rs`), the backup
//! [`PostgresSource`] (`source.rs`), the whole cluster's base backup [`ClusterSource`]
//! (`cluster.rs`), a snapshot's [`DumpLayout`] (`layout.rs`) and the restore
//! side, [`PostgresTarget`] (`target.rs`).

mod client;
mod cluster;
mod conn;
mod layout;
mod receiver;
mod session;
mod source;
mod tables;
mod target;

pub use client::{ClientBin, client_versions, explain, pick_client};
pub use cluster::{BASE_ARTIFACT, ClusterFacts, ClusterSource, facts as cluster_facts};
pub use conn::Conn;
pub use layout::{DumpLayout, GLOBALS_ARTIFACT, TOC_ARTIFACT};
pub use receiver::Receiver;
pub use session::{Session, quote_ident, quote_literal};
pub use source::PostgresSource;
pub use tables::{TABLES_SQL, count_rows, table_matches};
pub use target::{DumpInput, PostgresTarget};
