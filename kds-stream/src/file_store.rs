//! Leases in a local JSON file: the embedded default for one process. Every write replaces the
//! file atomically (a temporary file, synced, renamed over it, and the directory synced), and
//! an exclusive lock on a companion file keeps a second process from using the same leases.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kds_proto::types::ShardId;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::Error;
use crate::lease::{Lease, LeaseStore, StoreFuture, apply_delete, apply_updates};

/// The file's layout.
#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    leases: Vec<Lease>,
}

const VERSION: u32 = 1;

/// Leases kept in `<dir>/<name>.leases.json`, locked by `<dir>/<name>.lock` for as long as the
/// store is open.
#[derive(Debug)]
pub struct FileLeaseStore {
    path: PathBuf,
    /// Held open with an exclusive lock; released when the store is dropped (or the process
    /// ends, however it ends).
    _lock: File,
    leases: Mutex<BTreeMap<String, Lease>>,
}

impl FileLeaseStore {
    /// Opens (or creates) the leases called `name` in `dir`, creating `dir` if needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when `name` is not a plain file name
    /// (letters, digits, `.`, `_`, `-`), the directory or files cannot be made or read, the file
    /// does not parse, or another process holds the lock.
    pub fn open(dir: impl AsRef<Path>, name: &str) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(Error::store(format!(
                "lease store name `{name}` must be letters, digits, `.`, `_` and `-`"
            )));
        }
        let io = |what: &str, path: &Path, e: std::io::Error| {
            Error::store(format!("{what} {}", path.display())).with_source(e)
        };
        fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("cannot open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::store(format!(
                    "the leases {} are in use by another process (locked: {})",
                    dir.join(format!("{name}.leases.json")).display(),
                    lock_path.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io("cannot lock", &lock_path, e)),
        }
        let path = dir.join(format!("{name}.leases.json"));
        let leases = match fs::read(&path) {
            Ok(bytes) => {
                let document: Document = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::store(format!("{} does not parse", path.display())).with_source(e)
                })?;
                if document.version != VERSION {
                    return Err(Error::store(format!(
                        "{} has version {}; this kds reads version {VERSION}",
                        path.display(),
                        document.version
                    )));
                }
                let mut leases = BTreeMap::new();
                for lease in document.leases {
                    let shard = lease.shard_id.clone();
                    if leases.insert(shard.as_str().to_owned(), lease).is_some() {
                        return Err(Error::store(format!(
                            "{} holds two leases of one shard",
                            path.display()
                        ))
                        .for_shard(&shard));
                    }
                }
                leases
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io("cannot read", &path, e)),
        };
        Ok(Self {
            path,
            _lock: lock,
            leases: Mutex::new(leases),
        })
    }

    /// The leases file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `leases` in place of the file, atomically, off the async threads.
    async fn persist(&self, leases: &BTreeMap<String, Lease>) -> Result<(), Error> {
        let document = Document {
            version: VERSION,
            leases: leases.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&document)
            .map_err(|e| Error::store("cannot encode the leases").with_source(e))?;
        let path = Arc::new(self.path.clone());
        tokio::task::spawn_blocking(move || replace(&path, &bytes))
            .await
            .map_err(|e| Error::store("the lease writer stopped").with_source(e))?
    }

    /// Applies `change` to a copy of the leases and persists it; the leases change only once
    /// the file has.
    async fn write<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Lease>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut leases = self.leases.lock().await;
        let mut next = leases.clone();
        let out = change(&mut next)?;
        self.persist(&next).await?;
        *leases = next;
        Ok(out)
    }
}

/// Replaces `path` with `bytes`: a synced temporary file renamed over it, then the directory
/// synced, so a crash leaves the old file or the new one, never a mix.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::store(format!("cannot {what} {}", p.display())).with_source(e)
    };
    let temporary = path.with_extension("json.tmp");
    let mut file = File::create(&temporary).map_err(|e| io("create", &temporary, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", &temporary, e))?;
    fs::rename(&temporary, path).map_err(|e| io("replace", path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", dir, e))?;
    }
    Ok(())
}

impl LeaseStore for FileLeaseStore {
    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(async move { Ok(self.leases.lock().await.values().cloned().collect()) })
    }

    fn create(&self, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            self.write(|leases| {
                if leases.contains_key(lease.shard_id.as_str()) {
                    return Ok(false);
                }
                leases.insert(lease.shard_id.as_str().to_owned(), lease);
                Ok(true)
            })
            .await
        })
    }

    fn update(&self, leases: Vec<Lease>) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(async move { self.write(|stored| apply_updates(stored, leases)).await })
    }

    fn delete(&self, shard: &ShardId, counter: u64) -> StoreFuture<'_, ()> {
        let shard = shard.clone();
        Box::pin(async move {
            self.write(|stored| apply_delete(stored, &shard, counter))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kds-stream-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn the_file_store_compares_and_sets_and_survives_reopening() {
        let dir = scratch("cas");
        {
            let store = FileLeaseStore::open(&dir, "orders").unwrap();
            crate::lease::tests::check_compare_and_set(&store).await;
        }
        let store = FileLeaseStore::open(&dir, "orders").unwrap();
        let leases = store.list().await.unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].counter, 1);
        assert_eq!(leases[0].owner.as_deref(), Some("a"));
        assert_eq!(leases[0].hash_range, Some(("0".into(), "9".into())));
        assert!(!dir.join("orders.leases.json.tmp").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_process_at_a_time_and_plain_names_only() {
        let dir = scratch("lock");
        let first = FileLeaseStore::open(&dir, "orders").unwrap();
        let error = FileLeaseStore::open(&dir, "orders").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(
            error.to_string().contains("in use by another process"),
            "{error}"
        );
        // Another name in the same directory is another store.
        FileLeaseStore::open(&dir, "payments").unwrap();
        drop(first);
        FileLeaseStore::open(&dir, "orders").unwrap();
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            let error = FileLeaseStore::open(&dir, bad).unwrap_err();
            assert!(
                error.to_string().contains("must be letters"),
                "{bad}: {error}"
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_damaged_file_is_an_error_that_names_it() {
        let dir = scratch("damaged");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("orders.leases.json"),
            b"{\"version\":1,\"leases\":[{",
        )
        .unwrap();
        let error = FileLeaseStore::open(&dir, "orders").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("orders.leases.json does not parse"),
            "{error}"
        );
        fs::write(
            dir.join("orders.leases.json"),
            br#"{"version":1,"leases":[{"shard_id":"bad id","counter":0,"checkpoint":{"at":"shard-end"}}]}"#,
        )
        .unwrap();
        let error = FileLeaseStore::open(&dir, "orders").unwrap_err();
        assert!(error.to_string().contains("ShardId"), "{error}");
        fs::write(
            dir.join("orders.leases.json"),
            br#"{"version":2,"leases":[]}"#,
        )
        .unwrap();
        let error = FileLeaseStore::open(&dir, "orders").unwrap_err();
        assert!(error.to_string().contains("version 2"), "{error}");
        // Found in review: a second lease of a shard replaced the first without a word.
        fs::write(
            dir.join("orders.leases.json"),
            br#"{"version":1,"leases":[
                {"shard_id":"shardId-1","counter":3,"checkpoint":{"at":"shard-end"}},
                {"shard_id":"shardId-1","counter":1,"checkpoint":{"at":"shard-end"}}]}"#,
        )
        .unwrap();
        let error = FileLeaseStore::open(&dir, "orders").unwrap_err();
        assert!(
            error.to_string().contains("two leases of one shard"),
            "{error}"
        );
        assert_eq!(error.shard().map(ShardId::as_str), Some("shardId-1"));
        let _ = fs::remove_dir_all(&dir);
    }
}
