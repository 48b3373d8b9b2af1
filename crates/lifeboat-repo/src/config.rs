//! How to reach a repository: location and password, turned into rustic backends.

use std::collections::BTreeMap;

use lifeboat_core::{RepoLocation, Secret};
use rustic_backend::BackendOptions;
use rustic_core::RepositoryBackends;

use crate::{
    error::{RepoError, RepoResult},
    lock::LockStore,
    store,
};

/// A repository as the plan names it, with its password already read.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// The plan's name for it (`[repositories.<name>]`), used in every message.
    pub name: String,
    pub location: RepoLocation,
    pub password: Secret,
    /// S3 access key id and secret, when the plan names them; otherwise the standard AWS
    /// environment variables and profile files are used.
    pub s3_credentials: Option<(Secret, Secret)>,
}

impl RepoConfig {
    /// OpenDAL's S3 options for this repository, as rustic's backend and the lock files use.
    /// `packs`: the options for data packs, which alone get the plan's storage class.
    fn s3_options(&self, s3: &lifeboat_core::S3Location, packs: bool) -> BTreeMap<String, String> {
        let mut o = BTreeMap::new();
        o.insert("bucket".to_owned(), s3.bucket.clone());
        o.insert("root".to_owned(), format!("/{}", s3.prefix));
        if let Some(endpoint) = &s3.endpoint {
            o.insert("endpoint".to_owned(), endpoint.clone());
        }
        o.insert(
            "region".to_owned(),
            s3.region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
        );
        o.insert(
            "enable_virtual_host_style".to_owned(),
            (!s3.path_style).to_string(),
        );
        // A bucket with Object Lock takes no write without a checksum of the body.
        if s3.object_lock.is_some() {
            o.insert("checksum_algorithm".to_owned(), "md5".to_owned());
        }
        if packs && let Some(class) = &s3.storage_class {
            o.insert("default_storage_class".to_owned(), class.clone());
        }
        if let Some((id, secret)) = &self.s3_credentials {
            o.insert("access_key_id".to_owned(), id.expose().to_owned());
            o.insert("secret_access_key".to_owned(), secret.expose().to_owned());
        }
        o
    }

    /// An S3 operator with time-outs, retries and bounded concurrency (`store.rs`).
    pub(crate) fn s3_operator(
        &self,
        s3: &lifeboat_core::S3Location,
        packs: bool,
    ) -> RepoResult<opendal::blocking::Operator> {
        store::operator(self.s3_options(s3, packs), s3.timeout).map_err(|e| RepoError::Backend {
            action: "connect".to_owned(),
            name: self.name.clone(),
            detail: e.to_string(),
        })
    }

    pub(crate) fn backends(&self) -> RepoResult<RepositoryBackends> {
        match &self.location {
            RepoLocation::Local { path } => BackendOptions::default()
                .repository(path.display().to_string())
                .options(BTreeMap::new())
                .to_backends()
                .map_err(|err| RepoError::backend("connect", &self.name, &err)),
            // A storage class applies to data packs only: the index, snapshots, keys and
            // config stay in the standard class, so the repository can always be listed and
            // opened, even when its packs sit in an archive tier.
            RepoLocation::S3(s3) => {
                let packs = match s3.storage_class {
                    Some(_) => Some(self.s3_operator(s3, true)?),
                    None => None,
                };
                Ok(RepositoryBackends::new(
                    store::backend(self.s3_operator(s3, false)?, packs, self.location_text()),
                    None,
                ))
            }
        }
    }

    /// Where this repository's lock files are read and written.
    pub(crate) fn lock_store(&self) -> RepoResult<LockStore> {
        match &self.location {
            RepoLocation::Local { path } => Ok(LockStore::local(path)),
            RepoLocation::S3(s3) => Ok(LockStore::Remote(self.s3_operator(s3, false)?)),
        }
    }

    pub(crate) fn location_text(&self) -> String {
        self.location.to_string()
    }
}
