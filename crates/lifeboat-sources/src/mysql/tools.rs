//! [`Tools`]: the MariaDB or MySQL client programs found on `PATH`.

use std::path::PathBuf;

/// The client programs: `mariadb`/`mariadb-dump`, or MySQL's `mysql`/`mysqldump`.
#[derive(Debug, Clone)]
pub struct Tools {
    pub client: PathBuf,
    pub dump: PathBuf,
    /// `mysqldump` from MySQL (not MariaDB), with its major version: it needs a few options
    /// of its own.
    pub mysql_dump_major: Option<u32>,
}

impl Tools {
    /// Finds the client tools on `PATH`, MariaDB's names first; looked up once per process.
    ///
    /// # Errors
    /// The message names the programs looked for.
    pub fn find() -> Result<Self, String> {
        static FOUND: std::sync::OnceLock<Result<Tools, String>> = std::sync::OnceLock::new();
        FOUND.get_or_init(Self::look_up).clone()
    }

    fn look_up() -> Result<Self, String> {
        let dump = find_program(&["mariadb-dump", "mysqldump"])
            .ok_or("neither mariadb-dump nor mysqldump is installed")?;
        let client = find_program(&["mariadb", "mysql"])
            .ok_or("neither the mariadb nor the mysql client is installed")?;
        let version = std::process::Command::new(&dump)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mysql_dump_major = (!version.contains("MariaDB")).then(|| {
            version
                .split_whitespace()
                .skip_while(|w| *w != "Ver")
                .nth(1)
                .and_then(|v| v.split('.').next())
                .and_then(|m| m.parse().ok())
                .unwrap_or(0)
        });
        Ok(Self {
            client,
            dump,
            mysql_dump_major,
        })
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| {
                std::fs::metadata(p).is_ok_and(|m| {
                    m.is_file()
                        && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
            })
    })
}
