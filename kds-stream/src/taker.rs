//! Which leases a worker takes when several share a stream: the KCL 2 lease taker (expired or
//! unowned leases first, else one stolen from the most loaded worker), deciding without I/O,
//! with a thin async step that lists, decides and writes through a [`LeaseStore`].
//!
//! A lease is expired when its counter has not moved for a lease duration as this worker saw
//! it: no clock is compared across machines. Its owner renews it (a write that bumps the
//! counter) every third of a duration. A lease seen for the first time counts from then: a
//! worker that starts next to a dead one waits one duration before taking its shards.
//!
//! Only leases with work count: a shard read to its end (checkpoint `SHARD_END`) is not taken,
//! and a child is not taken until every parent's checkpoint is `SHARD_END` (or the parent has no
//! lease any more), as the KCL's `BlockOnParentShardTask` waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use kds_proto::types::ShardId;

use crate::assign::java_string_hash;
use crate::error::{Error, ErrorKind};
use crate::lease::{Lease, LeaseStore};

/// The KCL's default lease duration (`failoverTimeMillis`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// Decides which leases one worker takes.
#[derive(Debug)]
pub struct LeaseTaker {
    owner: String,
    duration: Duration,
    /// Each listed lease's counter, and when this worker first saw it at that counter.
    seen: HashMap<ShardId, (u64, Instant)>,
}

impl LeaseTaker {
    /// A taker for the worker `owner` (the name written into the leases it takes), with leases
    /// that expire after `lease_duration` without a renewal.
    pub fn new(owner: impl Into<String>, lease_duration: Duration) -> Self {
        Self {
            owner: owner.into(),
            duration: lease_duration,
            seen: HashMap::new(),
        }
    }

    /// The worker's name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lives without a renewal.
    pub fn lease_duration(&self) -> Duration {
        self.duration
    }

    /// Notes the counters of `leases`, listed at `now`.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        let listed: HashSet<&ShardId> = leases.iter().map(|l| &l.shard_id).collect();
        self.seen.retain(|shard, _| listed.contains(shard));
        for lease in leases {
            match self.seen.get(&lease.shard_id) {
                Some((counter, _)) if *counter == lease.counter => {}
                _ => {
                    self.seen
                        .insert(lease.shard_id.clone(), (lease.counter, now));
                }
            }
        }
    }

    /// Whether `lease` may be taken without stealing at `now`: nobody owns it, or its
    /// counter has not moved for a lease duration (as last [observed](Self::observe)). This
    /// worker's own leases never are.
    pub fn is_expired(&self, lease: &Lease, now: Instant) -> bool {
        match lease.owner.as_deref() {
            None => true,
            Some(owner) if owner == self.owner => false,
            Some(_) => match self.seen.get(&lease.shard_id) {
                Some((counter, since)) if *counter == lease.counter => {
                    now.saturating_duration_since(*since) >= self.duration
                }
                // Not observed at this counter: it just moved.
                _ => false,
            },
        }
    }

    /// Observes `leases` (every lease, listed at `now`) and returns the ones to take, with this
    /// worker as their owner, ready for [`LeaseStore::update`] (one at a time: a lease another
    /// worker took first is a lost race, not a failure).
    ///
    /// The target is `ceil(leases with work / workers)` (1 when there are as many workers as
    /// leases), workers being the owners of unexpired leases and this one. Below it, the
    /// worker takes expired and unowned leases up to the target; when there are none, it
    /// steals one lease from the most loaded worker if that one holds more than the target, or
    /// exactly the target while this worker needs two or more.
    pub fn choose(&mut self, leases: &[Lease], now: Instant) -> Vec<Lease> {
        self.observe(leases, now);
        let ended: HashSet<&ShardId> = leases
            .iter()
            .filter(|l| l.checkpoint.is_shard_end())
            .map(|l| &l.shard_id)
            .collect();
        let leased: HashSet<&ShardId> = leases.iter().map(|l| &l.shard_id).collect();
        let work: Vec<&Lease> = leases
            .iter()
            .filter(|l| {
                !l.checkpoint.is_shard_end()
                    && l.parents
                        .iter()
                        .all(|p| ended.contains(p) || !leased.contains(p))
            })
            .collect();
        if work.is_empty() {
            return Vec::new();
        }
        let mut workers: HashSet<&str> = leases
            .iter()
            .filter(|l| !self.is_expired(l, now))
            .filter_map(|l| l.owner.as_deref())
            .collect();
        workers.insert(&self.owner);
        let target = if workers.len() >= work.len() {
            1
        } else {
            work.len().div_ceil(workers.len())
        };
        let mine = work
            .iter()
            .filter(|l| l.owner.as_deref() == Some(self.owner.as_str()))
            .count();
        let Some(needed) = target.checked_sub(mine).filter(|&n| n > 0) else {
            return Vec::new();
        };
        let mut available: Vec<&Lease> = work
            .iter()
            .copied()
            .filter(|l| self.is_expired(l, now) && writable(l))
            .collect();
        // Unowned leases first, then in an order of this worker's own, so that workers
        // starting together reach for different leases.
        available.sort_by_key(|l| (l.owner.is_some(), self.preference(&l.shard_id)));
        let chosen: Vec<&Lease> = if available.is_empty() {
            self.steal(&work, target, needed, now).into_iter().collect()
        } else {
            available.into_iter().take(needed).collect()
        };
        chosen
            .into_iter()
            .map(|lease| {
                let mut taken = lease.clone();
                taken.owner = Some(self.owner.clone());
                taken
            })
            .collect()
    }

    /// The lease to steal from the most loaded worker, if balancing calls for one.
    fn steal<'a>(
        &self,
        work: &[&'a Lease],
        target: usize,
        needed: usize,
        now: Instant,
    ) -> Option<&'a Lease> {
        let mut by_owner: BTreeMap<&str, Vec<&'a Lease>> = BTreeMap::new();
        for lease in work {
            if let Some(owner) = lease.owner.as_deref()
                && owner != self.owner
                && !self.is_expired(lease, now)
                && writable(lease)
            {
                by_owner.entry(owner).or_default().push(lease);
            }
        }
        // The most loaded; the first name among equals.
        let (_, leases) = by_owner
            .into_iter()
            .rev()
            .max_by_key(|(_, leases)| leases.len())?;
        let steal = leases.len() > target || (leases.len() == target && needed > 1);
        if !steal {
            return None;
        }
        leases
            .into_iter()
            .min_by_key(|l| self.preference(&l.shard_id))
    }

    /// This worker's order over shards.
    fn preference(&self, shard: &ShardId) -> i32 {
        java_string_hash(&self.owner)
            .wrapping_mul(31)
            .wrapping_add(java_string_hash(shard.as_str()))
            .wrapping_mul(0x9E37_79B9_u32 as i32)
    }

    /// Lists `store`, chooses at `now`, and writes each chosen lease; returns the leases this
    /// worker took, as stored. A lease another worker wrote first is left to it.
    ///
    /// # Errors
    ///
    /// The store's, other than a lost race.
    pub async fn take(
        &mut self,
        store: &dyn LeaseStore,
        now: Instant,
    ) -> Result<Vec<Lease>, Error> {
        let leases = store.list().await?;
        let mut taken = Vec::new();
        for lease in self.choose(&leases, now) {
            match store.update(vec![lease]).await {
                Ok(stored) => taken.extend(stored),
                Err(e) if e.kind() == ErrorKind::LeaseLost => {
                    tracing::debug!(owner = %self.owner, error = %e, "another worker took the lease first");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }
}

/// Whether a lease can be taken: one whose counter is at its largest value cannot be written
/// again (no KCL writes such a counter; the KCL's is a Java `long`), and chosen, it would take
/// the place of one that can.
fn writable(lease: &Lease) -> bool {
    lease.counter < u64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::lease::MemoryLeaseStore;

    const DURATION: Duration = Duration::from_secs(10);

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    async fn with_leases(n: u32) -> MemoryLeaseStore {
        let store = MemoryLeaseStore::new();
        for shard in 0..n {
            let lease = Lease::new(id(shard), Checkpoint::TrimHorizon, Vec::new());
            assert!(store.create(lease).await.unwrap());
        }
        store
    }

    /// Found in review: a lease that cannot be written (its counter at the largest value),
    /// unowned, was chosen first, every time, in place of the expired lease of a dead worker.
    #[test]
    fn leases_that_cannot_be_written_are_not_chosen() {
        let lease = |n: u32, owner: Option<&str>, counter: u64| {
            let mut lease = Lease::new(id(n), Checkpoint::TrimHorizon, Vec::new());
            lease.owner = owner.map(str::to_owned);
            lease.counter = counter;
            lease
        };
        let mut leases = vec![
            lease(0, None, u64::MAX),
            lease(1, Some("dead"), 5),
            lease(2, Some("live"), 5),
            lease(3, Some("w"), 5),
        ];
        let mut taker = LeaseTaker::new("w", DURATION);
        let t0 = Instant::now();
        taker.observe(&leases, t0);
        leases[2].counter += 1;
        let chosen = taker.choose(&leases, t0 + DURATION);
        let chosen: Vec<&ShardId> = chosen.iter().map(|l| &l.shard_id).collect();
        assert_eq!(chosen, [&id(1)]);
    }

    /// How many leases with work each worker owns.
    async fn held(store: &MemoryLeaseStore) -> BTreeMap<String, usize> {
        let mut held = BTreeMap::new();
        for lease in store.list().await.unwrap() {
            if let Some(owner) = lease.owner
                && !lease.checkpoint.is_shard_end()
            {
                *held.entry(owner).or_default() += 1;
            }
        }
        held
    }

    /// Renews (rewrites) every lease `owner` holds.
    async fn renew(store: &MemoryLeaseStore, owner: &str) {
        let mine: Vec<Lease> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.owner.as_deref() == Some(owner))
            .collect();
        store.update(mine).await.unwrap();
    }

    #[tokio::test]
    async fn three_workers_share_eight_leases_and_survive_a_death_and_a_join() {
        let store = with_leases(8).await;
        let start = Instant::now();
        let mut takers: Vec<LeaseTaker> = ["a", "b", "c"]
            .into_iter()
            .map(|name| LeaseTaker::new(name, DURATION))
            .collect();
        // Unowned leases: each worker takes up to the target, ceil(8 / workers it sees).
        for taker in &mut takers {
            taker.take(&store, start).await.unwrap();
        }
        // a saw one worker (itself) and took all 8; b and c must wait for balancing.
        assert_eq!(held(&store).await.values().sum::<usize>(), 8);
        let mut now = start;
        for _ in 0..10 {
            now += DURATION / 3;
            for taker in &mut takers {
                renew(&store, taker.owner()).await;
                taker.take(&store, now).await.unwrap();
            }
        }
        let shares = held(&store).await;
        assert_eq!(shares.len(), 3, "{shares:?}");
        assert!(shares.values().all(|&n| (2..=3).contains(&n)), "{shares:?}");
        assert_eq!(shares.values().sum::<usize>(), 8);
        // c dies: its leases stop moving, and a and b take them one duration later, not before.
        let dead = takers.pop().unwrap();
        let orphans = shares[dead.owner()];
        now += DURATION / 3;
        for taker in &mut takers {
            renew(&store, taker.owner()).await;
            taker.take(&store, now).await.unwrap();
        }
        assert_eq!(held(&store).await[dead.owner()], orphans, "not expired yet");
        for _ in 0..4 {
            now += DURATION / 3;
            for taker in &mut takers {
                renew(&store, taker.owner()).await;
                taker.take(&store, now).await.unwrap();
            }
        }
        let shares = held(&store).await;
        assert_eq!(shares.get(dead.owner()), None, "{shares:?}");
        assert_eq!(shares.values().copied().collect::<Vec<_>>(), [4, 4]);
        // d joins: it steals one lease at a time from the most loaded until every worker
        // holds 2–3, and nobody steals once the shares are as even as they can be.
        takers.push(LeaseTaker::new("d", DURATION));
        let mut steals = 0;
        for _ in 0..6 {
            now += DURATION / 3;
            for taker in &mut takers {
                renew(&store, taker.owner()).await;
                let taken = taker.take(&store, now).await.unwrap();
                assert!(taken.len() <= 1, "one steal at a time: {taken:?}");
                steals += taken.len();
            }
        }
        let mut shares: Vec<usize> = held(&store).await.into_values().collect();
        shares.sort_unstable();
        assert_eq!(shares, [2, 3, 3]);
        assert_eq!(steals, 2, "only what balancing needs");
    }

    #[tokio::test]
    async fn children_wait_for_every_parent_to_end() {
        let store = MemoryLeaseStore::new();
        let parent = Lease::new(id(0), Checkpoint::TrimHorizon, Vec::new());
        let other = Lease::new(id(1), Checkpoint::ShardEnd, Vec::new());
        // A merge child of 0 and 1, and a split child of a shard without a lease (trimmed).
        let merged = Lease::new(id(2), Checkpoint::TrimHorizon, vec![id(0), id(1)]);
        let orphan = Lease::new(id(3), Checkpoint::TrimHorizon, vec![id(9)]);
        for lease in [parent, other, merged, orphan] {
            assert!(store.create(lease).await.unwrap());
        }
        let now = Instant::now();
        let mut taker = LeaseTaker::new("a", DURATION);
        let mut taken: Vec<ShardId> = taker
            .take(&store, now)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.shard_id)
            .collect();
        taken.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(
            taken,
            [id(0), id(3)],
            "not the ended shard, not the waiting child"
        );
        // The parent ends: the child becomes work.
        let mut ended = store.list().await.unwrap()[0].clone();
        ended.checkpoint = Checkpoint::ShardEnd;
        store.update(vec![ended]).await.unwrap();
        let taken = taker.take(&store, now).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].shard_id, id(2));
    }

    #[tokio::test]
    async fn racing_takers_take_each_lease_once() {
        let store = with_leases(4).await;
        let now = Instant::now();
        let mut a = LeaseTaker::new("a", DURATION);
        let mut b = LeaseTaker::new("b", DURATION);
        // Both decide on the same listing; a writes first, b's writes of the same leases lose.
        let leases = store.list().await.unwrap();
        let a_wants = a.choose(&leases, now);
        let b_wants = b.choose(&leases, now);
        assert_eq!((a_wants.len(), b_wants.len()), (4, 4));
        store.update(a_wants).await.unwrap();
        let mut b_won = 0;
        for lease in b_wants {
            if store.update(vec![lease]).await.is_ok() {
                b_won += 1;
            }
        }
        assert_eq!(b_won, 0);
        assert_eq!(held(&store).await["a"], 4);
        // A lease seen for the first time is not expired, however late: a newcomer steals
        // one lease (a holds more than the target of 2), it does not take two as expired.
        let late_now = now + DURATION * 5;
        let mut late = LeaseTaker::new("late", DURATION);
        let leases = store.list().await.unwrap();
        late.observe(&leases, late_now);
        assert!(leases.iter().all(|l| !late.is_expired(l, late_now)));
        assert!(late.is_expired(&leases[0], late_now + DURATION));
        let taken = late.take(&store, late_now).await.unwrap();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(held(&store).await["a"], 3);
    }
}
