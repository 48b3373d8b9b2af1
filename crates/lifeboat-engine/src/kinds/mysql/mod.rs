//! `mysql` assets (MySQL and MariaDB): a database dumped with `mysqldump`/`mariadb-dump` in
//! one transaction; restored through a scratch database swapped in by one `RENAME TABLE`
//! (`restore.rs`).

mod connect;
mod restore;

use std::{fs, path::Path};

use lifeboat_core::{Manifest, Secret};
use lifeboat_plan::{MysqlSpec, ResolvedAsset};
use lifeboat_sources::{
    Source, SourceError,
    mysql::{DumpSplit, MysqlServer, sql_ident},
};

use super::{
    contract::{Description, Kind, Lint},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    proof::{Found, LiveCheck, compare_counts, compare_live, sql_checks},
    sandbox,
};

pub(super) struct Mysql<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a MysqlSpec,
}

impl Kind for Mysql<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(connect::mysql_database(
            &self.asset.name,
            self.spec,
            &self.spec.url,
        )?))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        restore::restore(job, self.spec)
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let (asset, manifest) = (self.asset, job.manifest);
        let mut found = Found {
            bytes: job.fetch()?,
            ..Found::default()
        };
        let dump = job.only_artifact()?;
        let password = format!("{:016x}", rand::random::<u64>());
        let maria = sandbox::MariadbSandbox::start(Some(&password)).map_err(|e| e.to_string())?;
        let server = MysqlServer {
            asset: asset.name.clone(),
            host: "127.0.0.1".to_owned(),
            port: Some(maria.port()),
            user: Some("root".to_owned()),
            password: Some(Secret::new(password)),
        };
        let db = manifest
            .source
            .rsplit('/')
            .next()
            .filter(|d| !d.is_empty())
            .unwrap_or(&asset.name)
            .to_owned();
        server
            .execute("", &format!("CREATE DATABASE {}", sql_ident(&db)))
            .map_err(|e| e.to_string())?;
        let mut objects = Vec::new();
        server
            .load(&db, |stdin| {
                let mut split = DumpSplit::new(None).with_tables(stdin);
                let mut file = fs::File::open(&dump).map_err(|e| e.to_string())?;
                let n = std::io::copy(&mut file, &mut split).map_err(|e| e.to_string())?;
                split.finish().map_err(|e| e.to_string())?;
                objects = std::mem::take(&mut split.objects);
                Ok::<u64, String>(n)
            })
            .map_err(|e| e.to_string())?;
        if !objects.iter().all(u8::is_ascii_whitespace) {
            server
                .load(&db, |w| {
                    w.write_all(&objects).map(|()| objects.len() as u64)
                })
                .map_err(|e| e.to_string())?;
        }
        job.loaded();
        let counts = server.row_counts(&db).map_err(|e| e.to_string())?;
        found.compared = Some(compare_counts("tables", &counts, &manifest.tables)?);
        found.checks = sql_checks(&asset.checks, |sql| {
            server
                .query(&db, sql)
                .map(|rows| rows.into_iter().next().and_then(|r| r.into_iter().next()))
                .map_err(|e| e.to_string())
        });
        job.verified();
        Ok(found)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        _base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let mut out = LiveCheck::default();
        let source = connect::mysql_database(&self.asset.name, self.spec, &self.spec.url)?;
        if let Some(m) = manifest {
            let counts = source.server.row_counts(&source.database)?;
            compare_live("tables", &counts, &m.tables, false, &mut out);
        }
        out.checks = sql_checks(&self.asset.checks, |sql| {
            source
                .server
                .query(&source.database, sql)
                .map(|rows| rows.into_iter().next().and_then(|r| r.into_iter().next()))
                .map_err(|e| e.to_string())
        });
        Ok(out)
    }

    fn lint_restore_step(&self, to: bool, tables: bool) -> Option<Lint> {
        Lint::some_tables_in_place(&self.asset.name, to, tables)
    }

    fn describe(&self) -> Description {
        Description {
            location: self.spec.url.to_string(),
            secrets: self.spec.password.iter().cloned().collect(),
            by_hand: format!(
                "create the database, then mariadb <database> < DIR/{}/data/<database>.sql",
                self.asset.name
            ),
        }
    }
}
