//! One module per asset kind. Each turns its part of the plan into a [`Source`]: a preflight
//! check and a [`lifeboat_core::Payload`] for the repository to store.

pub mod command;
pub mod docker;
mod error;
pub mod files;
pub mod mysql;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod resp;
pub mod sqlite;

pub use error::SourceError;

use lifeboat_core::{Payload, SourceFacts};

/// One asset's data, ready to be backed up.
///
/// Contract: `preflight` touches nothing and reports every problem the user can fix before a
/// byte is written (missing path, missing binary). `backup` may start processes; a process that
/// fails later reports it through its stream (see [`lifeboat_core::StreamArtifact`]), so a
/// failure always discards the snapshot.
pub trait Source {
    /// Checks that the backup can start.
    ///
    /// # Errors
    /// A [`SourceError`] naming the asset and what is missing, with a hint.
    fn preflight(&self) -> Result<(), SourceError>;

    /// Describes the data and the facts known before it is read.
    ///
    /// # Errors
    /// A [`SourceError`] when the data cannot be described (e.g. a server refuses).
    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError>;

    /// Where the data comes from, safe to print and to store in the manifest.
    fn identity(&self) -> String;
}
