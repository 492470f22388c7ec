//! Leases: one per shard, holding its owner, a counter that every write bumps, the checkpoint,
//! the parents and the hash key range, as the KCL's lease table does. A [`LeaseStore`] keeps
//! them with compare-and-set on the counter, so two writers never both succeed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kds_proto::types::ShardId;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind};

/// One shard's lease.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The shard (the KCL's `leaseKey`).
    #[serde(with = "shard_text")]
    pub shard_id: ShardId,
    /// Who reads it (`leaseOwner`); `None`: nobody.
    #[serde(default)]
    pub owner: Option<String>,
    /// Bumped by every write (`leaseCounter`): a write names the counter it read and fails if
    /// another write came first.
    pub counter: u64,
    /// How far the shard was read and acknowledged (`checkpoint`,
    /// `checkpointSubSequenceNumber`).
    pub checkpoint: Checkpoint,
    /// The shards it follows (`parentShardId`): one after a split, two after a merge.
    #[serde(default, with = "shard_texts")]
    pub parents: Vec<ShardId>,
    /// Its hash key range, inclusive, as decimal text (`startingHashKey`, `endingHashKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_range: Option<(String, String)>,
}

impl Lease {
    /// A new lease of `shard_id`, owned by nobody, counter 0.
    pub fn new(shard_id: ShardId, checkpoint: Checkpoint, parents: Vec<ShardId>) -> Self {
        Self {
            shard_id,
            owner: None,
            counter: 0,
            checkpoint,
            parents,
            hash_range: None,
        }
    }

    /// With its hash key range.
    #[must_use]
    pub fn with_hash_range(mut self, start: u128, end: u128) -> Self {
        self.hash_range = Some((start.to_string(), end.to_string()));
        self
    }
}

/// What a lease store's operations return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Where leases live: in memory ([`MemoryLeaseStore`]), in a local file
/// ([`FileLeaseStore`](crate::FileLeaseStore)), or a shared service.
///
/// Every write is a compare-and-set on the lease counter: [`update`](Self::update) stores a
/// lease only if the stored counter still equals the one it was read with, and stores it with
/// the counter bumped; otherwise it fails with [`ErrorKind::LeaseLost`] and stores nothing.
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Every lease.
    fn list(&self) -> StoreFuture<'_, Vec<Lease>>;

    /// Stores `lease` unless a lease of its shard exists; whether it was stored.
    fn create(&self, lease: Lease) -> StoreFuture<'_, bool>;

    /// Stores each lease if the stored counter equals `lease.counter`; returns them as stored
    /// (counter + 1), in order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LeaseLost`] naming the first shard whose counter moved (or whose lease is
    /// gone). The stores of this crate then store none of them (the DynamoDB store: none of
    /// that lease's hundred).
    fn update(&self, leases: Vec<Lease>) -> StoreFuture<'_, Vec<Lease>>;

    /// Removes the lease of `shard` if its counter is `counter`.
    fn delete(&self, shard: &ShardId, counter: u64) -> StoreFuture<'_, ()>;

    /// Publishes the event-time watermark of reader `subtask` (`None`: it has no active shard,
    /// so it only asks) and returns the global one: the smallest watermark published within
    /// `fresh_within` by any subtask, this one's included; `None` when there is none. Sources
    /// aligning their shards (`scan.watermark.lookahead.millis`) call it every
    /// `scan.watermark.sync.interval`.
    ///
    /// A store that only one reader uses (the default) returns `watermark`: a file store
    /// belongs to one subtask, so subtasks with a file each align only their own shards.
    fn exchange_watermark(
        &self,
        subtask: usize,
        watermark: Option<i64>,
        fresh_within: Duration,
    ) -> StoreFuture<'_, Option<i64>> {
        let _ = (subtask, fresh_within);
        Box::pin(async move { Ok(watermark) })
    }
}

/// Leases in memory: for tests, and for one process that need not survive a restart.
#[derive(Debug, Default)]
pub struct MemoryLeaseStore {
    leases: Mutex<BTreeMap<String, Lease>>,
    /// Each subtask's last published watermark, and when.
    watermarks: Mutex<HashMap<usize, (i64, Instant)>>,
}

impl MemoryLeaseStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Applies compare-and-set updates to `leases`: all or none.
pub(crate) fn apply_updates(
    leases: &mut BTreeMap<String, Lease>,
    updates: Vec<Lease>,
) -> Result<Vec<Lease>, Error> {
    for update in &updates {
        let stored = leases.get(update.shard_id.as_str());
        if stored.map(|l| l.counter) != Some(update.counter) {
            return Err(lost(&update.shard_id, update.counter, stored));
        }
    }
    if let Some(full) = updates.iter().find(|l| l.counter == u64::MAX) {
        return Err(
            Error::store("the lease counter is at its largest value").for_shard(&full.shard_id)
        );
    }
    Ok(updates
        .into_iter()
        .map(|mut lease| {
            lease.counter += 1;
            leases.insert(lease.shard_id.as_str().to_owned(), lease.clone());
            lease
        })
        .collect())
}

pub(crate) fn lost(shard: &ShardId, expected: u64, stored: Option<&Lease>) -> Error {
    let found = match stored {
        Some(lease) => format!(
            "counter {} (owner {})",
            lease.counter,
            lease.owner.as_deref().unwrap_or("none")
        ),
        None => "no lease".to_owned(),
    };
    Error::new(
        ErrorKind::LeaseLost,
        format!("the lease was written with counter {expected}, the store has {found}"),
    )
    .for_shard(shard)
}

pub(crate) fn apply_delete(
    leases: &mut BTreeMap<String, Lease>,
    shard: &ShardId,
    counter: u64,
) -> Result<(), Error> {
    match leases.get(shard.as_str()) {
        Some(lease) if lease.counter == counter => {
            leases.remove(shard.as_str());
            Ok(())
        }
        stored => Err(lost(shard, counter, stored)),
    }
}

impl LeaseStore for MemoryLeaseStore {
    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        let leases = self
            .leases
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect();
        Box::pin(async move { Ok(leases) })
    }

    fn create(&self, lease: Lease) -> StoreFuture<'_, bool> {
        let mut leases = self.leases.lock().expect("not poisoned");
        let created = !leases.contains_key(lease.shard_id.as_str());
        if created {
            leases.insert(lease.shard_id.as_str().to_owned(), lease);
        }
        Box::pin(async move { Ok(created) })
    }

    fn update(&self, leases: Vec<Lease>) -> StoreFuture<'_, Vec<Lease>> {
        let result = apply_updates(&mut self.leases.lock().expect("not poisoned"), leases);
        Box::pin(async move { result })
    }

    fn delete(&self, shard: &ShardId, counter: u64) -> StoreFuture<'_, ()> {
        let result = apply_delete(
            &mut self.leases.lock().expect("not poisoned"),
            shard,
            counter,
        );
        Box::pin(async move { result })
    }

    fn exchange_watermark(
        &self,
        subtask: usize,
        watermark: Option<i64>,
        fresh_within: Duration,
    ) -> StoreFuture<'_, Option<i64>> {
        let now = Instant::now();
        let mut published = self.watermarks.lock().expect("not poisoned");
        if let Some(watermark) = watermark {
            published.insert(subtask, (watermark, now));
        }
        let global = published
            .values()
            .filter(|(_, at)| now.saturating_duration_since(*at) <= fresh_within)
            .map(|(watermark, _)| *watermark)
            .min();
        Box::pin(async move { Ok(global) })
    }
}

/// Shard ids as text, checked when read back.
mod shard_text {
    use kds_proto::types::ShardId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &ShardId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ShardId, D::Error> {
        ShardId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Lists of shard ids as text.
mod shard_texts {
    use kds_proto::types::ShardId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[ShardId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(value.iter().map(ShardId::as_str))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ShardId>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| ShardId::new(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use kds_proto::types::SequenceNumber;

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    /// The compare-and-set rules every store must keep; run against each store.
    pub(crate) async fn check_compare_and_set(store: &dyn LeaseStore) {
        let lease = Lease::new(id(0), Checkpoint::TrimHorizon, Vec::new()).with_hash_range(0, 9);
        assert!(store.create(lease.clone()).await.unwrap());
        assert!(!store.create(lease.clone()).await.unwrap(), "created once");
        // Two writers read counter 0; the first wins, the second is told it lost.
        let mut first = lease.clone();
        first.owner = Some("a".into());
        let mut second = lease.clone();
        second.owner = Some("b".into());
        let stored = store.update(vec![first]).await.unwrap();
        assert_eq!(stored[0].counter, 1);
        let error = store.update(vec![second.clone()]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::LeaseLost);
        assert_eq!(error.shard(), Some(&id(0)));
        assert!(error.to_string().contains("counter 1 (owner a)"), "{error}");
        // A batch with one stale lease stores none of it.
        let other = Lease::new(id(1), Checkpoint::AtTimestamp { millis: 7 }, vec![id(0)]);
        assert!(store.create(other.clone()).await.unwrap());
        let mut advanced = other.clone();
        advanced.checkpoint = Checkpoint::Record {
            sequence_number: SequenceNumber::new("42").unwrap(),
            sub_sequence_number: Some(2),
        };
        assert!(store.update(vec![advanced.clone(), second]).await.is_err());
        let listed = store.list().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1], other, "the batch stored nothing");
        // The same batch, fresh: all of it.
        let stored = store.update(vec![advanced]).await.unwrap();
        assert_eq!(stored[0].counter, 1);
        assert_eq!(store.list().await.unwrap()[1], stored[0]);
        // Deleting needs the current counter too.
        assert!(store.delete(&id(1), 0).await.is_err());
        store.delete(&id(1), 1).await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
        assert!(store.update(vec![stored[0].clone()]).await.is_err(), "gone");
    }

    #[tokio::test]
    async fn the_global_watermark_is_the_smallest_fresh_one() {
        let store = MemoryLeaseStore::new();
        let long = Duration::from_secs(60);
        // One subtask: its own, and an idle subtask's query changes nothing.
        assert_eq!(store.exchange_watermark(0, None, long).await.unwrap(), None);
        assert_eq!(
            store.exchange_watermark(0, Some(998), long).await.unwrap(),
            Some(998)
        );
        assert_eq!(
            store.exchange_watermark(0, Some(999), long).await.unwrap(),
            Some(999)
        );
        assert_eq!(
            store.exchange_watermark(0, None, long).await.unwrap(),
            Some(999)
        );
        // A slower subtask holds the others back…
        assert_eq!(
            store.exchange_watermark(1, Some(500), long).await.unwrap(),
            Some(500)
        );
        assert_eq!(
            store.exchange_watermark(0, Some(1200), long).await.unwrap(),
            Some(500)
        );
        // …until it has not published for longer than the freshness bound.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            store
                .exchange_watermark(0, Some(1300), Duration::from_millis(20))
                .await
                .unwrap(),
            Some(1300)
        );
        // The default for single-reader stores: the reader's own.
        #[derive(Debug)]
        struct Single;
        impl LeaseStore for Single {
            fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
                Box::pin(async { Ok(Vec::new()) })
            }
            fn create(&self, _: Lease) -> StoreFuture<'_, bool> {
                Box::pin(async { Ok(false) })
            }
            fn update(&self, _: Vec<Lease>) -> StoreFuture<'_, Vec<Lease>> {
                Box::pin(async { Ok(Vec::new()) })
            }
            fn delete(&self, _: &ShardId, _: u64) -> StoreFuture<'_, ()> {
                Box::pin(async { Ok(()) })
            }
        }
        assert_eq!(
            Single.exchange_watermark(3, Some(7), long).await.unwrap(),
            Some(7)
        );
    }

    #[tokio::test]
    async fn the_memory_store_compares_and_sets() {
        check_compare_and_set(&MemoryLeaseStore::new()).await;
    }
}
