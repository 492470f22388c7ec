//! Event-time alignment across shards (`scan.watermark.lookahead.millis`): batches that start
//! more than the lookahead past the reference watermark are held back, a shard holding
//! `scan.watermark.sync.queue.capacity` rows is paused, and held batches go out earliest first.
//! Sans-I/O: the source feeds it batches, page news and the clock, and asks what to hand out.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kds_proto::types::ShardId;

/// A batch held back, with what alignment needs to know of it.
#[derive(Debug)]
struct Held<T> {
    item: T,
    rows: usize,
    /// The earliest event time in the batch (`None`: no row has one).
    earliest: Option<i64>,
}

/// One shard being read.
#[derive(Debug)]
struct ShardQueue<T> {
    held: VecDeque<Held<T>>,
    rows: usize,
    /// Its last page said it was behind the tip of the shard.
    behind: bool,
    /// When it last delivered a page with records.
    active_at: Instant,
    /// No more pages come (ended, or up to a bounded read's end time).
    done: bool,
    paused: bool,
}

/// What the source should do with a shard's reader after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    Pause,
    Resume,
    Unchanged,
}

/// Batches of shards that run ahead in event time, held until the others catch up.
///
/// A batch goes out when its earliest event time is at most the reference watermark plus the
/// lookahead; among those, the earliest first. When none may, the earliest held batch still
/// goes out if the caller allows it (this reader is the slowest of its subtasks) and no shard
/// holds it back: a shard holds the others back while it is read, holds nothing, its last page
/// said it was behind the tip, and (with an idle interval) it delivered within that interval. A
/// shard that is caught up or idle has nothing earlier to give, so waiting for it would stall.
#[derive(Debug)]
pub(crate) struct Aligner<T> {
    lookahead: i64,
    capacity: usize,
    idle_after: Option<Duration>,
    shards: HashMap<ShardId, ShardQueue<T>>,
}

impl<T> Aligner<T> {
    /// Aligns with `lookahead` milliseconds, pausing a shard once it holds `capacity` rows.
    pub(crate) fn new(lookahead: i64, capacity: usize, idle_after: Option<Duration>) -> Self {
        Self {
            lookahead,
            capacity: capacity.max(1),
            idle_after,
            shards: HashMap::new(),
        }
    }

    fn queue(&mut self, shard: &ShardId, now: Instant) -> &mut ShardQueue<T> {
        self.shards
            .entry(shard.clone())
            .or_insert_with(|| ShardQueue {
                held: VecDeque::new(),
                rows: 0,
                behind: false,
                active_at: now,
                done: false,
                paused: false,
            })
    }

    /// A page of `shard` arrived at `now` (with or without rows for the table): whether it
    /// was behind the tip of the shard.
    pub(crate) fn page(&mut self, shard: &ShardId, behind: bool, now: Instant) {
        let queue = self.queue(shard, now);
        queue.behind = behind;
        queue.active_at = now;
        queue.done = false;
    }

    /// Holds `item`, a batch of `rows` rows of `shard` whose earliest event time is
    /// `earliest`; [`Gate::Pause`] when the shard now holds its capacity.
    pub(crate) fn hold(
        &mut self,
        shard: &ShardId,
        item: T,
        rows: usize,
        earliest: Option<i64>,
        now: Instant,
    ) -> Gate {
        let capacity = self.capacity;
        let queue = self.queue(shard, now);
        queue.held.push_back(Held {
            item,
            rows,
            earliest,
        });
        queue.rows += rows;
        if queue.rows >= capacity && !queue.paused {
            queue.paused = true;
            return Gate::Pause;
        }
        Gate::Unchanged
    }

    /// `shard` delivers no more pages: it holds nothing back (what it holds still goes out).
    pub(crate) fn done(&mut self, shard: &ShardId) {
        if let Some(queue) = self.shards.get_mut(shard) {
            queue.done = true;
            if queue.held.is_empty() {
                self.shards.remove(shard);
            }
        }
    }

    /// Drops `shard` and what it holds (its rows may no longer be handed out).
    pub(crate) fn forget(&mut self, shard: &ShardId) -> Vec<T> {
        self.shards
            .remove(shard)
            .map(|q| q.held.into_iter().map(|h| h.item).collect())
            .unwrap_or_default()
    }

    /// Batches held.
    pub(crate) fn held(&self) -> usize {
        self.shards.values().map(|q| q.held.len()).sum()
    }

    /// Whether a shard holds the others back at `now`.
    fn holds_back(&self, queue: &ShardQueue<T>, now: Instant) -> bool {
        !queue.done
            && queue.held.is_empty()
            && queue.behind
            && self
                .idle_after
                .is_none_or(|idle| now.saturating_duration_since(queue.active_at) < idle)
    }

    /// The next batch to hand out, with its shard and whether to resume that shard's reader;
    /// `reference` is the watermark to align to (`None`: none yet, anything may go),
    /// `may_force` whether this reader may run ahead when nothing holds it back.
    pub(crate) fn next(
        &mut self,
        reference: Option<i64>,
        may_force: bool,
        now: Instant,
    ) -> Option<(ShardId, T, Gate)> {
        // The earliest head; rows without event times first.
        let (shard, earliest) = self
            .shards
            .iter()
            .filter_map(|(id, q)| q.held.front().map(|h| (id, h.earliest)))
            .min_by_key(|(id, earliest)| (earliest.unwrap_or(i64::MIN), id.as_str()))
            .map(|(id, earliest)| (id.clone(), earliest))?;
        let within = match (reference, earliest) {
            (Some(reference), Some(earliest)) => {
                earliest <= reference.saturating_add(self.lookahead)
            }
            _ => true,
        };
        let forced = may_force && !self.shards.values().any(|q| self.holds_back(q, now));
        if !within && !forced {
            return None;
        }
        let capacity = self.capacity;
        let queue = self.shards.get_mut(&shard).expect("found above");
        let held = queue.held.pop_front().expect("a head");
        queue.rows -= held.rows;
        let mut gate = Gate::Unchanged;
        if queue.paused && queue.rows < capacity {
            queue.paused = false;
            gate = Gate::Resume;
        }
        if queue.done && queue.held.is_empty() {
            self.shards.remove(&shard);
        }
        Some((shard, held.item, gate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    #[test]
    fn batches_ahead_of_the_lookahead_wait_for_the_slow_shard() {
        let now = Instant::now();
        let mut aligner = Aligner::new(1_000, 100, None);
        let (slow, fast) = (shard(0), shard(1));
        aligner.page(&slow, true, now);
        aligner.page(&fast, true, now);
        assert_eq!(
            aligner.hold(&fast, "f1", 10, Some(60_000), now),
            Gate::Unchanged
        );
        // The slow shard is behind and holds nothing: the fast batch waits, even for a
        // reader that may run ahead.
        assert!(aligner.next(Some(0), true, now).is_none());
        aligner.hold(&slow, "s1", 10, Some(500), now);
        let (from, item, _) = aligner.next(Some(0), true, now).unwrap();
        assert_eq!((from, item), (slow.clone(), "s1"));
        // Within the lookahead of the reference: out, earliest first.
        aligner.page(&slow, true, now);
        aligner.hold(&slow, "s2", 10, Some(59_500), now);
        assert_eq!(aligner.next(Some(59_000), true, now).unwrap().1, "s2");
        assert_eq!(aligner.next(Some(59_000), true, now).unwrap().1, "f1");
        assert!(aligner.next(Some(59_000), true, now).is_none());
    }

    #[test]
    fn a_caught_up_idle_or_finished_shard_holds_nothing_back() {
        let now = Instant::now();
        let (slow, fast) = (shard(0), shard(1));
        // Caught up (its last page was at the tip).
        let mut aligner = Aligner::new(1_000, 100, None);
        aligner.page(&slow, false, now);
        aligner.hold(&fast, "f1", 1, Some(60_000), now);
        assert!(
            aligner.next(Some(0), false, now).is_none(),
            "not the slowest"
        );
        assert_eq!(aligner.next(Some(0), true, now).unwrap().1, "f1");
        // Idle.
        let mut aligner = Aligner::new(1_000, 100, Some(Duration::from_secs(5)));
        aligner.page(&slow, true, now);
        aligner.hold(&fast, "f1", 1, Some(60_000), now);
        assert!(aligner.next(Some(0), true, now).is_none());
        let later = now + Duration::from_secs(5);
        assert_eq!(aligner.next(Some(0), true, later).unwrap().1, "f1");
        // Ended.
        let mut aligner = Aligner::new(1_000, 100, None);
        aligner.page(&slow, true, now);
        aligner.hold(&fast, "f1", 1, Some(60_000), now);
        assert!(aligner.next(Some(0), true, now).is_none());
        aligner.done(&slow);
        assert_eq!(aligner.next(Some(0), true, now).unwrap().1, "f1");
        assert_eq!(aligner.held(), 0);
    }

    #[test]
    fn a_full_shard_is_paused_until_it_drops_below_its_capacity() {
        let now = Instant::now();
        let mut aligner = Aligner::new(0, 25, None);
        let s = shard(3);
        aligner.page(&s, false, now);
        assert_eq!(aligner.hold(&s, 1, 10, Some(1), now), Gate::Unchanged);
        assert_eq!(aligner.hold(&s, 2, 10, Some(2), now), Gate::Unchanged);
        assert_eq!(aligner.hold(&s, 3, 10, Some(3), now), Gate::Pause);
        assert_eq!(aligner.hold(&s, 4, 10, Some(4), now), Gate::Unchanged);
        // 40 held, then 30: still full.
        assert_eq!(aligner.next(None, true, now).unwrap().2, Gate::Unchanged);
        assert_eq!(aligner.next(None, true, now).unwrap().2, Gate::Resume);
        assert_eq!(aligner.hold(&s, 5, 10, Some(5), now), Gate::Pause);
        let order: Vec<i32> = std::iter::from_fn(|| aligner.next(None, true, now))
            .map(|(_, item, _)| item)
            .collect();
        assert_eq!(order, [3, 4, 5]);
    }

    #[test]
    fn forgotten_shards_hand_out_nothing_and_rows_without_event_times_go_first() {
        let now = Instant::now();
        let mut aligner = Aligner::new(0, 100, None);
        let (a, b) = (shard(0), shard(1));
        aligner.hold(&a, "a1", 1, Some(5), now);
        aligner.hold(&a, "a2", 1, Some(6), now);
        aligner.hold(&b, "b1", 1, None, now);
        assert_eq!(aligner.forget(&a), ["a1", "a2"]);
        assert_eq!(aligner.next(Some(0), false, now).unwrap().1, "b1");
        assert!(aligner.next(None, true, now).is_none());
    }
}
