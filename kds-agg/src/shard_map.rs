//! Shard-aware aggregation: a map of hash key ranges to shards, and one aggregator per shard, so
//! that an aggregate never holds records of two shards.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::RangeInclusive;
use std::time::Instant;

use crate::aggregate::{Added, Aggregate, Aggregator, AggregatorConfig, ProducerRecord};
use crate::error::{Error, ErrorKind};

/// Open shards by hash key range, as ListShards (with `ShardFilter` `AT_LATEST`) reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMap<K> {
    /// Sorted by range start; ranges do not overlap.
    shards: Vec<(RangeInclusive<u128>, K)>,
}

impl<K> ShardMap<K> {
    /// A map of `(shard, hash key range)` pairs in any order.
    ///
    /// # Errors
    ///
    /// `InvalidShardMap` when a range is reversed or two ranges overlap.
    pub fn new(shards: impl IntoIterator<Item = (K, RangeInclusive<u128>)>) -> Result<Self, Error> {
        let mut shards: Vec<(RangeInclusive<u128>, K)> =
            shards.into_iter().map(|(k, r)| (r, k)).collect();
        shards.sort_by_key(|(range, _)| *range.start());
        for (i, (range, _)) in shards.iter().enumerate() {
            if range.start() > range.end() {
                return Err(Error::new(
                    ErrorKind::InvalidShardMap,
                    format!("shard {i} in start order has range {range:?}, which is reversed"),
                ));
            }
            if let Some((next, _)) = shards.get(i + 1)
                && next.start() <= range.end()
            {
                return Err(Error::new(
                    ErrorKind::InvalidShardMap,
                    format!("ranges {range:?} and {next:?} overlap"),
                ));
            }
        }
        Ok(Self { shards })
    }

    /// The shard that owns `hash_key`, if any.
    pub fn shard_for(&self, hash_key: u128) -> Option<&K> {
        let at = self
            .shards
            .partition_point(|(range, _)| *range.end() < hash_key);
        self.shards
            .get(at)
            .filter(|(range, _)| range.contains(&hash_key))
            .map(|(_, shard)| shard)
    }

    /// The shards with their ranges, by range start.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &RangeInclusive<u128>)> {
        self.shards.iter().map(|(range, shard)| (shard, range))
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the map has no shards.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }
}

/// What [`ShardAggregator::add`] did with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed<K> {
    /// Buffered in its shard's aggregator.
    Buffered,
    /// An aggregate for `shard` is ready to put.
    Ready {
        /// The shard the aggregate's records belong to.
        shard: K,
        /// The aggregate.
        aggregate: Aggregate,
    },
    /// Too large to aggregate: put `flushed` (what `shard` had buffered, so that arrival order
    /// is kept), then the record by itself.
    TooLarge {
        /// The shard the record belongs to.
        shard: K,
        /// The aggregate of the records buffered before this one, if any.
        flushed: Option<Aggregate>,
    },
    /// No shard in the map owns the record's hash key: send it by itself (and refresh the map).
    /// Nothing was buffered.
    Unmapped,
}

/// What [`ShardAggregator::replace_map`] produced while routing buffered records again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rerouted<K> {
    /// Aggregates that filled up.
    pub ready: Vec<(K, Aggregate)>,
    /// Records the new map cannot aggregate (no shard owns them, or too large): send them alone.
    pub unsent: Vec<ProducerRecord>,
}

/// Aggregates records per predicted shard.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use kds_agg::{AggregatorConfig, ProducerRecord, ShardAggregator, ShardMap};
///
/// let half = u128::MAX / 2;
/// let map = ShardMap::new([("shard-0", 0..=half), ("shard-1", half + 1..=u128::MAX)])?;
/// let mut aggregator = ShardAggregator::new(map, AggregatorConfig::default())?;
/// let now = Instant::now();
/// aggregator.add(&ProducerRecord::new("x", &b"low"[..]).with_explicit_hash_key(1), now);
/// aggregator.add(&ProducerRecord::new("y", &b"high"[..]).with_explicit_hash_key(u128::MAX), now);
/// let ready = aggregator.flush_all();
/// assert_eq!(ready.len(), 2, "one aggregate per shard");
/// # Ok::<(), kds_agg::Error>(())
/// ```
#[derive(Debug)]
pub struct ShardAggregator<K> {
    map: ShardMap<K>,
    config: AggregatorConfig,
    aggregators: HashMap<K, Aggregator>,
}

impl<K: Clone + Eq + Hash> ShardAggregator<K> {
    /// An aggregator over `map`.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when the configuration is out of range.
    pub fn new(map: ShardMap<K>, config: AggregatorConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            map,
            config,
            aggregators: HashMap::new(),
        })
    }

    /// The current shard map.
    pub fn map(&self) -> &ShardMap<K> {
        &self.map
    }

    /// Routes a record that arrived at `now` to its shard's aggregator. The record is copied,
    /// not kept.
    pub fn add(&mut self, record: &ProducerRecord, now: Instant) -> Routed<K> {
        let Some(shard) = self.map.shard_for(record.hash_key()) else {
            return Routed::Unmapped;
        };
        let config = self.config;
        let aggregator = match self.aggregators.get_mut(shard) {
            Some(aggregator) => aggregator,
            None => self
                .aggregators
                .entry(shard.clone())
                .or_insert_with(|| Aggregator::with_valid_config(config)),
        };
        match aggregator.add(record, now) {
            Added::Buffered => Routed::Buffered,
            Added::Ready(aggregate) => Routed::Ready {
                shard: shard.clone(),
                aggregate,
            },
            Added::TooLarge { flushed } => Routed::TooLarge {
                shard: shard.clone(),
                flushed,
            },
        }
    }

    /// The earliest deadline of any shard's aggregate.
    pub fn deadline(&self) -> Option<Instant> {
        self.aggregators
            .values()
            .filter_map(Aggregator::deadline)
            .min()
    }

    /// The aggregates whose deadline has passed at `now`.
    pub fn poll_deadlines(&mut self, now: Instant) -> Vec<(K, Aggregate)> {
        self.aggregators
            .iter_mut()
            .filter_map(|(shard, a)| a.poll_deadline(now).map(|agg| (shard.clone(), agg)))
            .collect()
    }

    /// Every buffered aggregate, for shutdown.
    pub fn flush_all(&mut self) -> Vec<(K, Aggregate)> {
        self.aggregators
            .iter_mut()
            .filter_map(|(shard, a)| a.flush().map(|agg| (shard.clone(), agg)))
            .collect()
    }

    /// Replaces the map after resharding. Buffered records are routed again under the new
    /// map, keeping their arrival order and their first-arrival deadlines; what that produces
    /// (aggregates that filled up, records no shard owns) is returned.
    pub fn replace_map(&mut self, map: ShardMap<K>) -> Rerouted<K> {
        self.map = map;
        let mut drained: Vec<(Vec<ProducerRecord>, Instant)> = Vec::new();
        for aggregator in self.aggregators.values_mut() {
            if let (records, Some(started)) = aggregator.drain() {
                drained.push((records, started));
            }
        }
        self.aggregators.clear();
        drained.sort_by_key(|(_, started)| *started);
        let mut out = Rerouted {
            ready: Vec::new(),
            unsent: Vec::new(),
        };
        for (records, started) in drained {
            for record in records {
                match self.add(&record, started) {
                    Routed::Buffered => {}
                    Routed::Ready { shard, aggregate } => out.ready.push((shard, aggregate)),
                    Routed::TooLarge { shard, flushed } => {
                        out.ready
                            .extend(flushed.map(|aggregate| (shard, aggregate)));
                        out.unsent.push(record);
                    }
                    Routed::Unmapped => out.unsent.push(record),
                }
            }
        }
        out
    }
}
