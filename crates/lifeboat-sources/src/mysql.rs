//! `mysql` assets (MySQL and MariaDB): `mariadb-dump --single-transaction`, with the rows per
//! table counted in the dump itself as it is written; restored through the `mariadb` client.
//!
//! Passwords reach the client tools through a 0600 `--defaults-extra-file`, never argv. Every
//! tool runs through [`crate::process`]: its own process group, stderr kept, killed on Ctrl-C.
//!
//! The module is split by role: finding the client programs ([`Tools`], `tools.rs`), reaching
//! a server through them ([`MysqlServer`], `server.rs`), the backup [`MysqlSource`]
//! (`source.rs`), what a restore does on the server ([`DatabaseState`], `restore.rs`), and
//! reading dumps ([`dump`], [`DumpSplit`]).

pub mod dump;
mod restore;
mod server;
mod source;
mod split;
mod tools;

pub use restore::DatabaseState;
pub use server::{MysqlServer, sql_ident, sql_str};
pub use source::MysqlSource;
pub use split::DumpSplit;
pub use tools::Tools;
