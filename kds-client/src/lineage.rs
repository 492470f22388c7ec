//! The order in which a stream's shards are read: a shard once all of its parents have been read
//! to their end (parents before children, so that each partition key's records stay in order
//! across splits and merges). Sans-I/O bookkeeping shared by the polling reader and enhanced
//! fan-out.

use std::collections::{HashMap, HashSet};

use kds_proto::model::{ChildShard, ListShardsInput, Shard, StartingPosition};
use kds_proto::types::{ShardId, ShardIteratorType};

use crate::client::Client;
use crate::error::Error;
use crate::stream_id::StreamId;

/// A shard that follows another one, with all of its parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildOf {
    /// The child.
    pub shard_id: ShardId,
    /// Its parents: one after a split, two after a merge.
    pub parents: Vec<ShardId>,
}

impl From<&ChildShard> for ChildOf {
    fn from(child: &ChildShard) -> Self {
        Self {
            shard_id: child.shard_id.clone(),
            parents: child.parent_shards.clone(),
        }
    }
}

/// Which shards may be read now, and from where.
///
/// Built from a ListShards result and the starting position: shards whose parents are not
/// listed are ready at once; the others, and the children a shard names when it ends, wait
/// until every parent this lineage reads has ended. Each shard is handed out once, with its
/// starting position:
///
/// - shards without listed parents start at the requested position;
/// - with AT_TIMESTAMP, every descendant starts at the same time (its records before it are
///   not wanted either);
/// - with LATEST, a child whose parents were all closed when listed starts at LATEST too (the
///   parents held nothing new when reading began);
/// - every other child starts at TRIM_HORIZON: all of its records came after its parents'.
///
/// ```
/// use kds_client::{ChildOf, ShardLineage};
/// use kds_proto::model::StartingPosition;
/// use kds_proto::types::{ShardId, ShardIteratorType};
///
/// let parent = ShardId::new("shardId-000000000000")?;
/// let start = StartingPosition::new(ShardIteratorType::TrimHorizon);
/// let (mut lineage, ready) = ShardLineage::new(&[], &start);
/// assert!(ready.is_empty());
/// let child = ChildOf { shard_id: ShardId::new("shardId-000000000001")?, parents: vec![parent.clone()] };
/// let ready = lineage.ended(&parent, vec![child.clone()]);
/// assert_eq!(ready, vec![(child.shard_id, start)]);
/// # Ok::<(), kds_proto::ValidationError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShardLineage {
    start: StartingPosition,
    /// Shards waiting for their parents, with the parents they still wait for.
    waiting: HashMap<ShardId, HashSet<ShardId>>,
    /// Shards that were closed when listed.
    closed_when_listed: HashSet<ShardId>,
    /// Shards read or to be read: handed out, or listed.
    known: HashSet<ShardId>,
    ended: HashSet<ShardId>,
    handed_out: HashSet<ShardId>,
}

impl ShardLineage {
    /// The lineage of `shards` read from `start`, and the shards to read first with their
    /// starting positions.
    pub fn new(
        shards: &[Shard],
        start: &StartingPosition,
    ) -> (Self, Vec<(ShardId, StartingPosition)>) {
        let mut lineage = Self {
            start: start.clone(),
            waiting: HashMap::new(),
            closed_when_listed: HashSet::new(),
            known: shards.iter().map(|s| s.shard_id.clone()).collect(),
            ended: HashSet::new(),
            handed_out: HashSet::new(),
        };
        let mut ready = Vec::new();
        for shard in shards {
            if shard.is_closed() {
                lineage.closed_when_listed.insert(shard.shard_id.clone());
            }
            let parents: HashSet<ShardId> =
                [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .filter(|p| lineage.known.contains(*p))
                    .cloned()
                    .collect();
            if parents.is_empty() {
                if lineage.handed_out.insert(shard.shard_id.clone()) {
                    ready.push((shard.shard_id.clone(), start.clone()));
                }
            } else {
                lineage.waiting.insert(shard.shard_id.clone(), parents);
            }
        }
        (lineage, ready)
    }

    /// Records that `shard` was read to its end and names its `children`; returns the children
    /// now ready (every parent this lineage reads has ended), each once, with their starting
    /// positions.
    pub fn ended(
        &mut self,
        shard: &ShardId,
        children: Vec<ChildOf>,
    ) -> Vec<(ShardId, StartingPosition)> {
        self.ended.insert(shard.clone());
        let mut ready = Vec::new();
        for child in children {
            if self.handed_out.contains(&child.shard_id) {
                continue;
            }
            let known = &self.known;
            let waiting = self
                .waiting
                .entry(child.shard_id.clone())
                // Parents this lineage does not read (not listed, not started) are not waited
                // for: they would never end here.
                .or_insert_with(|| {
                    child
                        .parents
                        .iter()
                        .filter(|p| known.contains(*p))
                        .cloned()
                        .collect()
                });
            waiting.retain(|p| !self.ended.contains(p));
            if waiting.is_empty() {
                self.waiting.remove(&child.shard_id);
                let position = self.child_start(&child);
                self.known.insert(child.shard_id.clone());
                self.handed_out.insert(child.shard_id.clone());
                ready.push((child.shard_id, position));
            }
        }
        ready
    }

    fn child_start(&self, child: &ChildOf) -> StartingPosition {
        let inherit = match self.start.r#type {
            ShardIteratorType::AtTimestamp => true,
            ShardIteratorType::Latest => child
                .parents
                .iter()
                .filter(|p| self.known.contains(*p))
                .all(|p| self.closed_when_listed.contains(p)),
            _ => false,
        };
        if inherit {
            self.start.clone()
        } else {
            StartingPosition::new(ShardIteratorType::TrimHorizon)
        }
    }

    /// Shards waiting for a parent to end.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

impl Client {
    /// The shards of `stream` that descend directly from `parent`, from ListShards: for a shard
    /// that ended without naming its children.
    ///
    /// # Errors
    ///
    /// As [`list_all_shards`](Self::list_all_shards).
    pub async fn children_of(
        &self,
        stream: &StreamId,
        parent: &ShardId,
    ) -> Result<Vec<ChildOf>, Error> {
        let mut list = ListShardsInput::new();
        stream.set(&mut list.stream_name, &mut list.stream_arn);
        let shards = self.list_all_shards(&list).await?;
        Ok(shards
            .into_iter()
            .filter(|s| {
                s.parent_shard_id.as_ref() == Some(parent)
                    || s.adjacent_parent_shard_id.as_ref() == Some(parent)
            })
            .map(|s| ChildOf {
                shard_id: s.shard_id,
                parents: [s.parent_shard_id, s.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kds_proto::model::HashKeyRange;
    use kds_proto::model::SequenceNumberRange;
    use kds_proto::types::{HashKey, SequenceNumber, Timestamp};

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    fn shard(n: u32, parents: &[u32], closed: bool) -> Shard {
        let mut range = SequenceNumberRange::new(SequenceNumber::new("1").unwrap());
        if closed {
            range.ending_sequence_number = Some(SequenceNumber::new("9").unwrap());
        }
        let mut shard = Shard::new(id(n), HashKeyRange::new(HashKey::MIN, HashKey::MAX), range);
        shard.parent_shard_id = parents.first().map(|&p| id(p));
        shard.adjacent_parent_shard_id = parents.get(1).map(|&p| id(p));
        shard
    }

    fn child(n: u32, parents: &[u32]) -> ChildOf {
        ChildOf {
            shard_id: id(n),
            parents: parents.iter().map(|&p| id(p)).collect(),
        }
    }

    fn at(kind: ShardIteratorType) -> StartingPosition {
        StartingPosition::new(kind)
    }

    fn ids(ready: Vec<(ShardId, StartingPosition)>) -> Vec<ShardId> {
        ready.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_merge_waits_for_both_parents_and_is_handed_out_once() {
        // 0 and 1 merge into 2; 2 splits into 3 and 4. 3 is listed, 4 is not.
        let shards = [
            shard(0, &[], true),
            shard(1, &[], true),
            shard(2, &[0, 1], true),
            shard(3, &[2], false),
        ];
        let (mut lineage, ready) = ShardLineage::new(&shards, &at(ShardIteratorType::TrimHorizon));
        assert_eq!(ids(ready), vec![id(0), id(1)]);
        assert_eq!(lineage.waiting(), 2);
        assert!(lineage.ended(&id(0), vec![child(2, &[0, 1])]).is_empty());
        assert_eq!(
            ids(lineage.ended(&id(1), vec![child(2, &[0, 1])])),
            vec![id(2)]
        );
        assert_eq!(
            ids(lineage.ended(&id(2), vec![child(3, &[2]), child(4, &[2])])),
            vec![id(3), id(4)]
        );
        // Named again (a repeated final event): not handed out twice.
        assert!(lineage.ended(&id(2), vec![child(3, &[2])]).is_empty());
        assert_eq!(lineage.waiting(), 0);
    }

    #[test]
    fn parents_this_lineage_does_not_read_are_not_waited_for() {
        // The parent is past retention and no longer listed.
        let (mut lineage, ready) = ShardLineage::new(
            &[shard(5, &[1], false)],
            &at(ShardIteratorType::TrimHorizon),
        );
        assert_eq!(ids(ready), vec![id(5)]);
        // 5 merges with 6, which is not read (another reader's shard): 7 follows 5 alone.
        assert_eq!(
            ids(lineage.ended(&id(5), vec![child(7, &[5, 6])])),
            vec![id(7)]
        );
    }

    #[test]
    fn children_start_where_the_requested_position_says() {
        // 0 was split into 1 and 2 before reading began; 1 is split into 3 while being read.
        let shards = [
            shard(0, &[], true),
            shard(1, &[0], false),
            shard(2, &[0], false),
        ];
        let time = {
            let mut position = at(ShardIteratorType::AtTimestamp);
            position.timestamp = Some(Timestamp::from_millis(1_700_000_000_000));
            position
        };
        for (start, listed_child, later_child) in [
            (
                at(ShardIteratorType::Latest),
                at(ShardIteratorType::Latest),
                at(ShardIteratorType::TrimHorizon),
            ),
            (time.clone(), time.clone(), time.clone()),
            (
                at(ShardIteratorType::TrimHorizon),
                at(ShardIteratorType::TrimHorizon),
                at(ShardIteratorType::TrimHorizon),
            ),
        ] {
            let (mut lineage, ready) = ShardLineage::new(&shards, &start);
            assert_eq!(ready, vec![(id(0), start.clone())]);
            let ready = lineage.ended(&id(0), vec![child(1, &[0]), child(2, &[0])]);
            assert_eq!(
                ready,
                vec![(id(1), listed_child.clone()), (id(2), listed_child.clone())],
                "{start:?}"
            );
            assert_eq!(
                lineage.ended(&id(1), vec![child(3, &[1])]),
                vec![(id(3), later_child)],
                "{start:?}"
            );
        }
    }
}
