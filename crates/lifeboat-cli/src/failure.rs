//! How a run ends and what it logs: the [`Failure`] every command returns, its rendering as
//! text or JSON, and the log subscriber with the levels `-q`/`-v` and `LIFEBOAT_LOG` choose.

use std::io::IsTerminal;

use lifeboat_engine::EngineError;

use crate::{Cli, Command, Exit};

/// Log targets capped whatever `LIFEBOAT_LOG` or `-v` ask for (a prefix covers every
/// `reqsign_*` crate).
const SILENCED_SIGNER: &str = "reqsign=info";

pub(crate) fn init_logging(cli: &Cli) {
    // rustic's own log lines repeat, in its words, findings Lifeboat reports in its own (with
    // asset and snapshot): shown only from -vv.
    let daemon = matches!(cli.command, Command::Daemon { .. });
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error,rustic_core=off",
        // The daemon says what it runs.
        (false, 0) if daemon => "info,rustic_core=off",
        (false, 0) => "warn,rustic_core=off",
        (false, 1) => "info,rustic_core=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        // The S3 signer's debug lines print its credentials (secret key included) with
        // `{:?}`: never shown, whatever level is asked for.
        .add_directive(SILENCED_SIGNER.parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false);
    let _ = if daemon {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// An error on its way out: message, optional hint, exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
            code: e.exit_code(),
        }
    }
}

impl From<lifeboat_server::DaemonError> for Failure {
    fn from(e: lifeboat_server::DaemonError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
            code: Exit::Error as u8,
        }
    }
}

impl From<lifeboat_plan::PlanError> for Failure {
    fn from(e: lifeboat_plan::PlanError) -> Self {
        // The plan error's Display already carries its hint line.
        Self {
            message: e.to_string(),
            hint: None,
            code: Exit::Error as u8,
        }
    }
}

pub(crate) fn report_error(cli: &Cli, err: &Failure) {
    if cli.json {
        let doc = serde_json::json!({
            "error": err.message,
            "hint": err.hint,
            "exit-code": err.code,
        });
        println!("{doc}");
    } else {
        eprintln!("error: {}", err.message);
        if let Some(h) = &err.hint {
            eprintln!("  hint: {h}");
        }
    }
}
