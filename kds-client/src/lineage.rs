//! The order in which a stream's shards are read: a shard once all of its parents have been read
//! to their end (parents before children, so that each partition key's records stay in order
//! across splits and merges). Sans-I/O bookkeeping shared by the polling reader and enhanced
//! fan-out.

use std::collections::{HashMap, HashSet};

use kds_proto::model::{ChildShard, ListShardsInput, Shard};
use kds_proto::types::ShardId;

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

/// Which shards may be read now.
///
/// Built from a ListShards result: shards whose parents are not listed are ready at once; the
/// others, and the children a shard names when it ends, wait until every parent has ended.
/// Each shard is handed out once.
///
/// ```
/// use kds_client::{ChildOf, ShardLineage};
/// use kds_proto::types::ShardId;
///
/// let parent = ShardId::new("shardId-000000000000")?;
/// let (mut lineage, ready) = ShardLineage::new(&[]);
/// assert!(ready.is_empty());
/// let child = ChildOf { shard_id: ShardId::new("shardId-000000000001")?, parents: vec![parent.clone()] };
/// assert_eq!(lineage.ended(&parent, vec![child.clone()]), vec![child.shard_id]);
/// # Ok::<(), kds_proto::ValidationError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShardLineage {
    /// Shards waiting for their parents, with the parents they still wait for.
    waiting: HashMap<ShardId, HashSet<ShardId>>,
    ended: HashSet<ShardId>,
    handed_out: HashSet<ShardId>,
}

impl ShardLineage {
    /// The lineage of `shards`, and the shards to read first: those whose parents are not
    /// among `shards` (read them from the chosen starting position; the others from
    /// TRIM_HORIZON when [`ended`](Self::ended) hands them out).
    pub fn new(shards: &[Shard]) -> (Self, Vec<ShardId>) {
        let mut lineage = Self::default();
        let listed: HashSet<&ShardId> = shards.iter().map(|s| &s.shard_id).collect();
        let mut ready = Vec::new();
        for shard in shards {
            let parents: HashSet<ShardId> =
                [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                    .into_iter()
                    .flatten()
                    .filter(|p| listed.contains(p))
                    .cloned()
                    .collect();
            if parents.is_empty() {
                if lineage.handed_out.insert(shard.shard_id.clone()) {
                    ready.push(shard.shard_id.clone());
                }
            } else {
                lineage.waiting.insert(shard.shard_id.clone(), parents);
            }
        }
        (lineage, ready)
    }

    /// Records that `shard` was read to its end and names its `children`; returns the children
    /// now ready (all of their parents ended), each once.
    pub fn ended(&mut self, shard: &ShardId, children: Vec<ChildOf>) -> Vec<ShardId> {
        self.ended.insert(shard.clone());
        let mut ready = Vec::new();
        for child in children {
            if self.handed_out.contains(&child.shard_id) {
                continue;
            }
            let waiting = self
                .waiting
                .entry(child.shard_id.clone())
                .or_insert_with(|| child.parents.into_iter().collect());
            waiting.retain(|p| !self.ended.contains(p));
            if waiting.is_empty() {
                self.waiting.remove(&child.shard_id);
                self.handed_out.insert(child.shard_id.clone());
                ready.push(child.shard_id);
            }
        }
        ready
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
    use kds_proto::types::{HashKey, SequenceNumber};

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    fn shard(n: u32, parents: &[u32]) -> Shard {
        let mut shard = Shard::new(
            id(n),
            HashKeyRange::new(HashKey::MIN, HashKey::MAX),
            SequenceNumberRange::new(SequenceNumber::new("1").unwrap()),
        );
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

    #[test]
    fn a_merge_waits_for_both_parents_and_is_handed_out_once() {
        // 0 and 1 merge into 2; 2 splits into 3 and 4. 3 is listed, 4 is not.
        let shards = [
            shard(0, &[]),
            shard(1, &[]),
            shard(2, &[0, 1]),
            shard(3, &[2]),
        ];
        let (mut lineage, ready) = ShardLineage::new(&shards);
        assert_eq!(ready, vec![id(0), id(1)]);
        assert_eq!(lineage.waiting(), 2);
        assert!(lineage.ended(&id(0), vec![child(2, &[0, 1])]).is_empty());
        assert_eq!(lineage.ended(&id(1), vec![child(2, &[0, 1])]), vec![id(2)]);
        assert_eq!(
            lineage.ended(&id(2), vec![child(3, &[2]), child(4, &[2])]),
            vec![id(3), id(4)]
        );
        // Named again (a repeated final event): not handed out twice.
        assert!(lineage.ended(&id(2), vec![child(3, &[2])]).is_empty());
        assert_eq!(lineage.waiting(), 0);
    }

    #[test]
    fn parents_outside_the_listing_do_not_hold_a_shard_back() {
        // The parent is past retention and no longer listed.
        let (_, ready) = ShardLineage::new(&[shard(5, &[1])]);
        assert_eq!(ready, vec![id(5)]);
    }
}
