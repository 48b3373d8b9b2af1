//! Lifeboat's exit codes: the one list every crate that decides a code takes it from, and the
//! text `lifeboat --help` prints.

/// How a `lifeboat` process ends. A repository that stays locked past `LIFEBOAT_LOCK_WAIT` is
/// an [`Exit::Error`], with a hint naming the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// An error; for `recover`, a step failed; for `plan check`, the plan has errors.
    Error = 1,
    /// Unknown option or bad value on the command line (clap's own code).
    Usage = 2,
    /// Some assets failed or had warnings; for `status`, an RPO breach, a copy lagging more
    /// than the RPO, or a restore forecast over the RTO; for `plan check`, warnings only.
    Partial = 3,
    /// No repository at the plan's location.
    NoRepository = 10,
    /// The repository's password is wrong.
    WrongPassword = 12,
    /// Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Self; 7] = [
        Self::Ok,
        Self::Error,
        Self::Usage,
        Self::Partial,
        Self::NoRepository,
        Self::WrongPassword,
        Self::Interrupted,
    ];

    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// One line for the help text.
    #[must_use]
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => {
                "error (for recover, a step failed; for plan check, the plan has errors)"
            }
            Self::Usage => "usage error (unknown option, bad value)",
            Self::Partial => {
                "partial: some assets failed or had warnings; for status, an RPO breach, a copy lagging more than the RPO, or a restore forecast over the RTO; for plan check, warnings only"
            }
            Self::NoRepository => "no repository at the plan's location",
            Self::WrongPassword => "wrong repository password",
            Self::Interrupted => "interrupted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_order() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 10, 12, 130]);
    }
}
