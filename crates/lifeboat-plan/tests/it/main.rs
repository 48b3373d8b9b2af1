//! Integration tests of lifeboat-plan's public API: one binary, one module per concern.

mod errors;
mod example;
mod properties;
mod resolution;
mod schedules;
mod secrets;

use std::path::Path;

use lifeboat_plan::{PlanError, ResolvedPlan};

/// Where test plans claim to live; nothing is read from there.
pub const FILE: &str = "/plans/lifeboat.toml";

/// The three lines every valid plan starts with.
pub const HEAD: &str = "version = 1\n[plan]\nname = \"test\"\n";

/// [`HEAD`] plus one asset: the smallest valid plan (lines 1-6).
pub const MINIMAL: &str =
    "version = 1\n[plan]\nname = \"test\"\n[assets.web]\ntype = \"files\"\npaths = [\"/srv\"]\n";

pub fn ok(text: &str) -> ResolvedPlan {
    lifeboat_plan::parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}\n--- in:\n{text}"))
}

pub fn error(text: &str) -> PlanError {
    match lifeboat_plan::parse(text, Path::new(FILE)) {
        Ok(plan) => panic!("expected an error, parsed {plan:#?}\n--- from:\n{text}"),
        Err(e) => e,
    }
}

/// The error's full Display, the way the CLI shows it.
pub fn err(text: &str) -> String {
    error(text).to_string()
}
