//! `lifeboat completions SHELL` and `lifeboat man`: generated from the clap definition, so
//! they always list the commands and options this binary has.

use std::{
    io::{self, Write},
    path::Path,
};

use clap::CommandFactory;
use lifeboat_core::Exit;

use crate::{Cli, failure::Failure};

fn io_failure(what: &str, e: &io::Error) -> Failure {
    Failure {
        message: format!("{what}: {e}"),
        hint: None,
        code: Exit::Error as u8,
    }
}

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    let mut cmd = Cli::command();
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "lifeboat", &mut out);
    out.flush()
        .map_err(|e| io_failure("write the completion script", &e))?;
    Ok(0)
}

pub(crate) fn man(out: Option<&Path>) -> Result<u8, Failure> {
    let cmd = Cli::command();
    match out {
        None => {
            let mut stdout = io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut stdout)
                .and_then(|()| stdout.flush())
                .map_err(|e| io_failure("write the man page", &e))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_failure(&format!("create {}", dir.display()), &e))?;
            clap_mangen::generate_to(cmd, dir)
                .map_err(|e| io_failure(&format!("write man pages into {}", dir.display()), &e))?;
        }
    }
    Ok(0)
}
