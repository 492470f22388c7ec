//! One shard's reading decisions, without I/O: fed each GetRecords page or enhanced fan-out event
//! with the time it arrived, a [`ShardCursor`] says which records to deliver, where the next
//! request resumes, and whether the shard ended (with its children). The polling reader and
//! kds-efo's readers are thin drivers over it.

use std::time::{Duration, Instant};

use kds_proto::model::{
    ChildShard, GetRecordsOutput, Record, StartingPosition, SubscribeToShardEvent,
};
use kds_proto::types::{SequenceNumber, ShardId, ShardIterator, ShardIteratorType, Timestamp};

use crate::lineage::ChildOf;

/// Records read from one shard in one response (or one enhanced fan-out event).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The shard the records are from.
    pub shard_id: ShardId,
    /// The records, in order.
    pub records: Vec<Record>,
    /// How far behind the tip of the shard the response was, in milliseconds.
    pub millis_behind_latest: i64,
}

/// One GetRecords page or SubscribeToShard event, as a [`ShardCursor`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    records: Vec<Record>,
    millis_behind_latest: i64,
    child_shards: Vec<ChildShard>,
    follows: Follows,
}

/// What says whether more of the shard follows a page.
#[derive(Clone, Debug, PartialEq)]
enum Follows {
    /// GetRecords: whether the page came with a next iterator (none: the shard is closed and
    /// was read to its end).
    Iterator(bool),
    /// SubscribeToShard: the event's continuation sequence number (none: the last event of a
    /// closed shard, which names the children).
    Continuation(Option<SequenceNumber>),
}

impl Page {
    /// A GetRecords page, and the iterator to read the next one with (`None` at the end of a
    /// closed shard).
    pub fn from_get_records(output: GetRecordsOutput) -> (Self, Option<ShardIterator>) {
        let next = output.next_shard_iterator;
        let page = Self {
            records: output.records,
            millis_behind_latest: output.millis_behind_latest.unwrap_or(0),
            child_shards: output.child_shards.unwrap_or_default(),
            follows: Follows::Iterator(next.is_some()),
        };
        (page, next)
    }

    /// A SubscribeToShard event.
    pub fn from_event(event: SubscribeToShardEvent) -> Self {
        Self {
            records: event.records,
            millis_behind_latest: event.millis_behind_latest,
            child_shards: event.child_shards.unwrap_or_default(),
            follows: Follows::Continuation(event.continuation_sequence_number),
        }
    }
}

/// What a [`ShardCursor`] made of a page.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The records to deliver, in order: the page's, less repeats of records already delivered
    /// and those that arrived after the end time of a bounded read.
    pub records: Vec<Record>,
    /// How far behind the tip of the shard the page was, in milliseconds.
    pub millis_behind_latest: i64,
    /// What the driver does next.
    pub next: Next,
}

impl Step {
    /// The records as a [`Batch`] of `shard`, unless there are none.
    pub fn into_batch(self, shard: &ShardId) -> Option<Batch> {
        (!self.records.is_empty()).then(|| Batch {
            shard_id: shard.clone(),
            records: self.records,
            millis_behind_latest: self.millis_behind_latest,
        })
    }
}

/// What a driver does after a page.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Read on: the next page (with the page's iterator), or the subscription's next event.
    Continue,
    /// The event broke the protocol (it has no continuation, yet the shard is open and no
    /// children were named): deliver the step's records, then abandon the subscription and
    /// subscribe again at [`ShardCursor::position`] after a backoff, as after an error.
    Resubscribe,
    /// The shard ended: [`ShardCursor::end`] says how.
    Ended,
}

/// How a shard's reading ended.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardEnd {
    /// The shard is closed (split or merged) and every record was read; the shards that
    /// follow it, as the service named them (empty when it named none: ask ListShards).
    Closed(Vec<ChildOf>),
    /// An open shard was read up to the end time of a bounded read.
    EndTime,
}

/// One shard's reading state: what was delivered, where to resume, and whether it ended.
///
/// Drivers send the request at [`position`](Self::position), feed each response to
/// [`advance`](Self::advance) with the time it arrived, deliver the step's records and do what
/// its [`Next`] says. The rules, in order:
///
/// 1. Records not after the last one delivered are repeats (a service that resumed early) and
///    are dropped and counted; so are records before the requested start (after an
///    AFTER_SEQUENCE_NUMBER, before an AT_SEQUENCE_NUMBER or an AT_TIMESTAMP), which a service
///    that ignores the position sends.
/// 2. In a bounded read (`end_at`), the first record that arrived after the end time and all
///    after it are not delivered, and the shard ends there.
/// 3. A GetRecords page without a next iterator ends the shard, with the children it names.
///    An event without a continuation ends it when it names children, or when the shard was
///    closed when listed; otherwise it breaks the protocol ([`Next::Resubscribe`]). An event
///    that sends nothing and names children ends it too (ferrokinesis names the children on
///    every event of a closed shard), and so does one that sends nothing, 0 ms behind, on a shard
///    closed when listed (kinesis-local never sends the last event of a closed shard).
/// 4. In a bounded read, an open shard ends once caught up: nothing new, 0 ms behind.
///
/// Reading resumes after the last record delivered, or after an event's continuation when it
/// delivered nothing. Positions are detached copies ([`SequenceNumber::detach`]), so a cursor
/// never keeps a response alive.
///
/// ```
/// use bytes::Bytes;
/// use kds_client::{Next, Page, ShardCursor, ShardEnd};
/// use kds_proto::model::{Record, StartingPosition, SubscribeToShardEvent};
/// use kds_proto::types::{PartitionKey, SequenceNumber, ShardId, ShardIteratorType};
/// use std::time::Instant;
///
/// let shard = ShardId::new("shardId-000000000000")?;
/// let mut cursor = ShardCursor::new(shard, StartingPosition::new(ShardIteratorType::TrimHorizon), false, None);
/// let record = Record::new(SequenceNumber::new("7")?, Bytes::from_static(b"x"), PartitionKey::new("k")?);
/// let mut event = SubscribeToShardEvent::new(vec![record], 0);
/// event.continuation_sequence_number = Some(SequenceNumber::new("7")?);
/// let step = cursor.advance(Page::from_event(event.clone()), Instant::now());
/// assert_eq!((step.records.len(), step.next), (1, Next::Continue));
/// assert_eq!(cursor.position().sequence_number.as_ref().map(|s| s.as_str()), Some("7"));
/// // The same event again (an early resumption): nothing new is delivered.
/// let step = cursor.advance(Page::from_event(event), Instant::now());
/// assert_eq!((step.records.len(), cursor.repeats_dropped()), (0, 1));
/// assert_eq!(cursor.end(), None);
/// # Ok::<(), kds_proto::ValidationError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShardCursor {
    shard: ShardId,
    /// Where the next request starts.
    position: StartingPosition,
    last_delivered: Option<SequenceNumber>,
    /// Closed when listed: it ends by itself, never for being caught up.
    closed: bool,
    end_at: Option<Timestamp>,
    end: Option<ShardEnd>,
    delivered: u64,
    repeats_dropped: u64,
    protocol_breaks: u64,
    last_records_at: Option<Instant>,
    /// Until the first record is delivered: records before the requested start, which a service
    /// that ignores the position sends, are dropped (ferrokinesis resumes subscriptions at the
    /// shard's start).
    floor: Option<Floor>,
}

/// The requested start, for records before it.
#[derive(Clone, Debug)]
enum Floor {
    /// AT_SEQUENCE_NUMBER: records before this one.
    AtSequence(SequenceNumber),
    /// AT_TIMESTAMP: records that arrived before this time.
    AtTimestamp(Timestamp),
}

/// How long before its first request a shard started at LATEST resumes when it must, having
/// delivered nothing: the local clock may run ahead of the service's.
const LATEST_MARGIN_MILLIS: i64 = 1_000;

impl ShardCursor {
    /// A cursor on `shard` from `start`. `closed`: the shard was closed when listed (it has an
    /// ending sequence number). `end_at`: read only what the shard held at that time.
    pub fn new(
        shard: ShardId,
        start: StartingPosition,
        closed: bool,
        end_at: Option<Timestamp>,
    ) -> Self {
        // AFTER_SEQUENCE_NUMBER: as if that record had been delivered.
        let last_delivered = match start.r#type {
            ShardIteratorType::AfterSequenceNumber => start.sequence_number.clone(),
            _ => None,
        };
        let floor = match start.r#type {
            ShardIteratorType::AtSequenceNumber => {
                start.sequence_number.clone().map(Floor::AtSequence)
            }
            ShardIteratorType::AtTimestamp => start.timestamp.map(Floor::AtTimestamp),
            _ => None,
        };
        Self {
            shard,
            position: start,
            last_delivered,
            closed,
            end_at,
            end: None,
            delivered: 0,
            repeats_dropped: 0,
            protocol_breaks: 0,
            last_records_at: None,
            floor,
        }
    }

    /// Reads one page that arrived at `now`.
    pub fn advance(&mut self, page: Page, now: Instant) -> Step {
        let Page {
            mut records,
            millis_behind_latest,
            child_shards,
            follows,
        } = page;
        let step = |records, next| Step {
            records,
            millis_behind_latest,
            next,
        };
        if self.end.is_some() {
            return step(Vec::new(), Next::Ended);
        }
        // Whether the service sent no record at all (repeats count: they show there is more).
        let sent_nothing = records.is_empty();
        let before = records.len();
        if let Some(last) = &self.last_delivered {
            records.retain(|r| &r.sequence_number > last);
        }
        if let Some(floor) = &self.floor {
            // Only a prefix can lie before the start: the first record at or after it ends the
            // check.
            let first_wanted = records.iter().position(|r| match floor {
                Floor::AtSequence(at) => &r.sequence_number >= at,
                Floor::AtTimestamp(at) => r.approximate_arrival_timestamp.is_none_or(|t| &t >= at),
            });
            match first_wanted {
                Some(first) => {
                    records.drain(..first);
                    self.floor = None;
                }
                None => records.clear(),
            }
        }
        self.repeats_dropped += (before - records.len()) as u64;
        let past_end = self.end_at.and_then(|end| {
            records
                .iter()
                .position(|r| r.approximate_arrival_timestamp.is_some_and(|t| t > end))
        });
        if let Some(first_after) = past_end {
            records.truncate(first_after);
        }
        if let Some(last) = records.last() {
            // Detached: a position must not keep the whole response alive.
            let last = last.sequence_number.detach();
            self.position = StartingPosition::after_sequence_number(last.clone());
            self.last_delivered = Some(last);
            self.delivered += records.len() as u64;
            self.last_records_at = Some(now);
        }
        if past_end.is_some() {
            self.end = Some(ShardEnd::EndTime);
            return step(records, Next::Ended);
        }
        let children: Vec<ChildOf> = child_shards.iter().map(ChildOf::from).collect();
        let next = match follows {
            Follows::Iterator(false) => {
                self.end = Some(ShardEnd::Closed(children));
                Next::Ended
            }
            Follows::Iterator(true) => Next::Continue,
            Follows::Continuation(None) if !children.is_empty() || self.closed => {
                self.end = Some(ShardEnd::Closed(children));
                Next::Ended
            }
            Follows::Continuation(None) => {
                self.protocol_breaks += 1;
                Next::Resubscribe
            }
            // Nothing more to read: named children, or a shard closed when listed that is
            // caught up (kinesis-local never sends a closed shard's last event).
            Follows::Continuation(Some(_))
                if sent_nothing
                    && (!children.is_empty() || (self.closed && millis_behind_latest == 0)) =>
            {
                self.end = Some(ShardEnd::Closed(children));
                Next::Ended
            }
            Follows::Continuation(Some(continuation)) => {
                let newer = self
                    .last_delivered
                    .as_ref()
                    .is_none_or(|l| &continuation > l);
                if records.is_empty() && newer {
                    self.position = StartingPosition::after_sequence_number(continuation.detach());
                }
                Next::Continue
            }
        };
        let caught_up = sent_nothing && millis_behind_latest == 0;
        if next == Next::Continue && caught_up && self.end_at.is_some() && !self.closed {
            self.end = Some(ShardEnd::EndTime);
            return step(records, Next::Ended);
        }
        step(records, next)
    }

    /// The position to send in the next request, made at `now`: [`position`](Self::position),
    /// except that a shard started at LATEST is read from LATEST once. Every later request
    /// (after an error, an expired iterator or a subscription that ended) starts at the time of
    /// that first one (less a second for clock skew) until a record was delivered, so records
    /// that arrived in between are not skipped.
    pub fn request(&mut self, now: Timestamp) -> StartingPosition {
        let position = self.position.clone();
        if position.r#type == ShardIteratorType::Latest {
            self.position = StartingPosition::at_timestamp(Timestamp::from_millis(
                now.as_millis().saturating_sub(LATEST_MARGIN_MILLIS),
            ));
        }
        position
    }

    /// Records that the service has no iterator for the shard (GetShardIterator answered none):
    /// a closed shard read to its end, whose children are not named.
    pub fn read_to_end(&mut self) {
        if self.end.is_none() {
            self.end = Some(ShardEnd::Closed(Vec::new()));
        }
    }

    /// Records the children of a shard that ended without naming them (found with ListShards).
    pub fn set_children(&mut self, children: Vec<ChildOf>) {
        if let Some(ShardEnd::Closed(named)) = &mut self.end {
            *named = children;
        }
    }

    /// The shard.
    pub fn shard(&self) -> &ShardId {
        &self.shard
    }

    /// Where the next request starts: the starting position, then after the last record
    /// delivered (or after the continuation of an event that delivered nothing).
    pub fn position(&self) -> &StartingPosition {
        &self.position
    }

    /// The sequence number of the last record delivered.
    pub fn last_delivered(&self) -> Option<&SequenceNumber> {
        self.last_delivered.as_ref()
    }

    /// How reading ended; `None` while it goes on.
    pub fn end(&self) -> Option<&ShardEnd> {
        self.end.as_ref()
    }

    /// Whether the shard was closed when listed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Records delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Records the service sent again (not after the last one delivered), dropped.
    pub fn repeats_dropped(&self) -> u64 {
        self.repeats_dropped
    }

    /// Events that broke the protocol ([`Next::Resubscribe`]).
    pub fn protocol_breaks(&self) -> u64 {
        self.protocol_breaks
    }

    /// How long no record was delivered, at `now`: since the last delivery, or `None` before
    /// the first.
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.last_records_at
            .map(|at| now.saturating_duration_since(at))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kds_proto::model::HashKeyRange;
    use kds_proto::types::{HashKey, PartitionKey, ShardIteratorType};

    use super::*;

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::new(n.to_string()).unwrap()
    }

    /// Record `n` arrived `n` seconds after the epoch.
    fn record(n: u64) -> Record {
        let mut record = Record::new(seq(n), Bytes::new(), PartitionKey::new("k").unwrap());
        record.approximate_arrival_timestamp = Some(Timestamp::from_millis(n as i64 * 1000));
        record
    }

    fn child(n: u32) -> ChildShard {
        ChildShard::new(
            id(n),
            vec![id(0)],
            HashKeyRange::new(HashKey::MIN, HashKey::MAX),
        )
    }

    /// A page in shorthand: records, behind, children, and how the shard follows.
    #[derive(Clone)]
    struct P(&'static [u64], i64, &'static [u32], F);

    #[derive(Clone, Copy)]
    enum F {
        Iterator,
        NoIterator,
        Continuation(u64),
        NoContinuation,
    }

    fn page(p: &P) -> Page {
        let P(records, behind, children, follows) = p;
        Page {
            records: records.iter().map(|&n| record(n)).collect(),
            millis_behind_latest: *behind,
            child_shards: children.iter().map(|&n| child(n)).collect(),
            follows: match follows {
                F::Iterator => Follows::Iterator(true),
                F::NoIterator => Follows::Iterator(false),
                F::Continuation(c) => Follows::Continuation(Some(seq(*c))),
                F::NoContinuation => Follows::Continuation(None),
            },
        }
    }

    /// One case: the cursor's setup, the pages, and what each step must give (delivered
    /// sequence numbers, next), then the end, the resume point and the repeats dropped.
    struct Case {
        name: &'static str,
        closed: bool,
        end_at_secs: Option<i64>,
        pages: &'static [(P, &'static [u64], Next)],
        end: Option<ShardEnd>,
        resume_after: Option<u64>,
        repeats: u64,
        breaks: u64,
    }

    fn closed_with(children: &[u32]) -> Option<ShardEnd> {
        Some(ShardEnd::Closed(
            children.iter().map(|&n| ChildOf::from(&child(n))).collect(),
        ))
    }

    #[test]
    fn the_cursor_decides_what_to_deliver_where_to_resume_and_when_the_shard_ends() {
        use Next::{Continue, Ended, Resubscribe};
        let cases = [
            Case {
                name: "polling reads on while pages have iterators, and ends without one",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[1, 2], 5, &[], F::Iterator), &[1, 2], Continue),
                    (P(&[], 0, &[], F::Iterator), &[], Continue),
                    (P(&[3], 0, &[1, 2], F::NoIterator), &[3], Ended),
                ],
                end: closed_with(&[1, 2]),
                resume_after: Some(3),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "repeats after an early resumption are dropped and counted",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (
                        P(&[1, 2, 3], 0, &[], F::Continuation(3)),
                        &[1, 2, 3],
                        Continue,
                    ),
                    (P(&[2, 3, 4], 0, &[], F::Continuation(4)), &[4], Continue),
                    (P(&[1], 0, &[], F::Continuation(4)), &[], Continue),
                ],
                end: None,
                resume_after: Some(4),
                repeats: 3,
                breaks: 0,
            },
            Case {
                name: "an event without records moves the resume point to its continuation",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[5], 0, &[], F::Continuation(5)), &[5], Continue),
                    (P(&[], 0, &[], F::Continuation(9)), &[], Continue),
                ],
                end: None,
                resume_after: Some(9),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "a continuation older than the last delivery does not move it back",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[5], 0, &[], F::Continuation(5)), &[5], Continue),
                    (P(&[], 0, &[], F::Continuation(2)), &[], Continue),
                ],
                end: None,
                resume_after: Some(5),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "the last event of a closed shard names the children, without continuation",
                closed: false,
                end_at_secs: None,
                pages: &[(P(&[1], 0, &[2], F::NoContinuation), &[1], Ended)],
                end: closed_with(&[2]),
                resume_after: Some(1),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "an event without continuation on an open shard is a protocol break, not an end",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[1, 2], 0, &[], F::NoContinuation), &[1, 2], Resubscribe),
                    (P(&[2, 3], 0, &[], F::Continuation(3)), &[3], Continue),
                ],
                end: None,
                resume_after: Some(3),
                repeats: 1,
                breaks: 1,
            },
            Case {
                name: "a shard closed when listed ends at an event without continuation",
                closed: true,
                end_at_secs: None,
                pages: &[(P(&[7], 0, &[], F::NoContinuation), &[7], Ended)],
                end: closed_with(&[]),
                resume_after: Some(7),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "children named on every event: the end is the first event with nothing new",
                closed: true,
                end_at_secs: None,
                pages: &[
                    (P(&[1, 2], 0, &[2], F::Continuation(2)), &[1, 2], Continue),
                    (P(&[3], 0, &[2], F::Continuation(3)), &[3], Continue),
                    (P(&[], 0, &[2], F::Continuation(3)), &[], Ended),
                ],
                end: closed_with(&[2]),
                resume_after: Some(3),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "children named on every event: repeats after an early resumption are not the end",
                closed: true,
                end_at_secs: None,
                pages: &[
                    (P(&[1, 2], 0, &[2], F::Continuation(2)), &[1, 2], Continue),
                    (P(&[2], 0, &[2], F::Continuation(2)), &[], Continue),
                    (P(&[2, 3], 0, &[2], F::Continuation(3)), &[3], Continue),
                    (P(&[], 0, &[2], F::Continuation(3)), &[], Ended),
                ],
                end: closed_with(&[2]),
                resume_after: Some(3),
                repeats: 2,
                breaks: 0,
            },
            Case {
                name: "a shard closed when listed ends once an event is caught up",
                closed: true,
                end_at_secs: None,
                pages: &[
                    (P(&[1, 2], 0, &[], F::Continuation(2)), &[1, 2], Continue),
                    (P(&[], 40, &[], F::Continuation(2)), &[], Continue),
                    (P(&[], 0, &[], F::Continuation(2)), &[], Ended),
                ],
                end: closed_with(&[]),
                resume_after: Some(2),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "an open shard caught up reads on",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[1], 0, &[], F::Continuation(1)), &[1], Continue),
                    (P(&[], 0, &[], F::Continuation(1)), &[], Continue),
                ],
                end: None,
                resume_after: Some(1),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "a bounded read stops before the first record that arrived after the end",
                closed: false,
                end_at_secs: Some(3),
                pages: &[
                    (P(&[1, 2], 10, &[], F::Iterator), &[1, 2], Continue),
                    (P(&[3, 4, 5], 0, &[], F::Iterator), &[3], Ended),
                ],
                end: Some(ShardEnd::EndTime),
                resume_after: Some(3),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "a bounded read of an open shard ends once caught up",
                closed: false,
                end_at_secs: Some(100),
                pages: &[
                    (P(&[1], 10, &[], F::Continuation(1)), &[1], Continue),
                    (P(&[], 5, &[], F::Continuation(1)), &[], Continue),
                    (P(&[], 0, &[], F::Continuation(1)), &[], Ended),
                ],
                end: Some(ShardEnd::EndTime),
                resume_after: Some(1),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "a bounded read of a closed shard ignores being caught up and reads to its end",
                closed: true,
                end_at_secs: Some(100),
                pages: &[
                    (P(&[], 0, &[], F::Iterator), &[], Continue),
                    (P(&[1], 0, &[1], F::NoIterator), &[1], Ended),
                ],
                end: closed_with(&[1]),
                resume_after: Some(1),
                repeats: 0,
                breaks: 0,
            },
            Case {
                name: "pages after the end deliver nothing",
                closed: false,
                end_at_secs: None,
                pages: &[
                    (P(&[1], 0, &[], F::NoIterator), &[1], Ended),
                    (P(&[2], 0, &[], F::Iterator), &[], Ended),
                ],
                end: closed_with(&[]),
                resume_after: Some(1),
                repeats: 0,
                breaks: 0,
            },
        ];
        for case in cases {
            let mut cursor = ShardCursor::new(
                id(0),
                StartingPosition::new(ShardIteratorType::TrimHorizon),
                case.closed,
                case.end_at_secs.map(|s| Timestamp::from_millis(s * 1000)),
            );
            let now = Instant::now();
            for (i, (p, delivered, next)) in case.pages.iter().enumerate() {
                let step = cursor.advance(page(p), now);
                let got: Vec<u64> = step
                    .records
                    .iter()
                    .map(|r| r.sequence_number.as_str().parse().unwrap())
                    .collect();
                assert_eq!(
                    (got.as_slice(), step.next),
                    (*delivered, *next),
                    "{}: page {i}",
                    case.name
                );
            }
            assert_eq!(cursor.end(), case.end.as_ref(), "{}", case.name);
            let resume = cursor
                .position()
                .sequence_number
                .as_ref()
                .map(|s| s.as_str().parse::<u64>().unwrap());
            assert_eq!(resume, case.resume_after, "{}", case.name);
            if resume.is_some() {
                assert_eq!(
                    cursor.position().r#type,
                    ShardIteratorType::AfterSequenceNumber,
                    "{}",
                    case.name
                );
            }
            assert_eq!(cursor.repeats_dropped(), case.repeats, "{}", case.name);
            assert_eq!(cursor.protocol_breaks(), case.breaks, "{}", case.name);
        }
    }

    #[test]
    fn a_shard_without_an_iterator_ends_and_takes_children_found_later() {
        let mut cursor = ShardCursor::new(
            id(0),
            StartingPosition::new(ShardIteratorType::Latest),
            true,
            None,
        );
        cursor.read_to_end();
        assert_eq!(cursor.end(), Some(&ShardEnd::Closed(Vec::new())));
        let found = vec![ChildOf::from(&child(3))];
        cursor.set_children(found.clone());
        assert_eq!(cursor.end(), Some(&ShardEnd::Closed(found)));
        // The starting position is kept: nothing was delivered.
        assert_eq!(cursor.position().r#type, ShardIteratorType::Latest);
    }

    #[test]
    fn latest_is_asked_once_then_resumes_at_the_time_of_that_request() {
        let mut cursor = ShardCursor::new(
            id(0),
            StartingPosition::new(ShardIteratorType::Latest),
            false,
            None,
        );
        let first = Timestamp::from_millis(1_700_000_010_000);
        assert_eq!(cursor.request(first).r#type, ShardIteratorType::Latest);
        // A page without records, then a failure: the next request does not skip what arrived.
        cursor.advance(page(&P(&[], 0, &[], F::Iterator)), Instant::now());
        let again = cursor.request(Timestamp::from_millis(1_700_000_020_000));
        assert_eq!(again.r#type, ShardIteratorType::AtTimestamp);
        assert_eq!(
            again.timestamp,
            Some(Timestamp::from_millis(1_700_000_009_000))
        );
        // Once a record was delivered, reading resumes after it.
        cursor.advance(page(&P(&[7], 0, &[], F::Iterator)), Instant::now());
        let after = cursor.request(Timestamp::from_millis(1_700_000_030_000));
        assert_eq!(after.r#type, ShardIteratorType::AfterSequenceNumber);
        // Other starts are sent as they are.
        let mut cursor = ShardCursor::new(
            id(0),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            false,
            None,
        );
        for _ in 0..2 {
            assert_eq!(cursor.request(first).r#type, ShardIteratorType::TrimHorizon);
        }
    }

    #[test]
    fn records_before_the_requested_start_are_dropped() {
        let delivered = |start: StartingPosition, pages: &[P]| {
            let mut cursor = ShardCursor::new(id(0), start, false, None);
            let got: Vec<Vec<u64>> = pages
                .iter()
                .map(|p| {
                    cursor
                        .advance(page(p), Instant::now())
                        .records
                        .iter()
                        .map(|r| r.sequence_number.as_str().parse().unwrap())
                        .collect()
                })
                .collect();
            (got, cursor.repeats_dropped())
        };
        // A service that ignores the position starts at the shard's start.
        let from_start = [
            P(&[1, 2, 3], 0, &[], F::Continuation(3)),
            P(&[4, 5], 0, &[], F::Continuation(5)),
        ];
        assert_eq!(
            delivered(StartingPosition::after_sequence_number(seq(3)), &from_start),
            (vec![vec![], vec![4, 5]], 3)
        );
        assert_eq!(
            delivered(StartingPosition::at_sequence_number(seq(2)), &from_start),
            (vec![vec![2, 3], vec![4, 5]], 1)
        );
        // Record n arrived n seconds after the epoch: AT_TIMESTAMP 4.5 s keeps 5 on.
        let at = StartingPosition::at_timestamp(Timestamp::from_millis(4_500));
        assert_eq!(delivered(at, &from_start), (vec![vec![], vec![5]], 4));
        // Only a prefix: once a record at or after the start came, later ones are all kept,
        // whatever their arrival times.
        let at = StartingPosition::at_timestamp(Timestamp::from_millis(2_000));
        let pages = [
            P(&[1, 2], 0, &[], F::Continuation(2)),
            P(&[3], 0, &[], F::Continuation(3)),
        ];
        assert_eq!(delivered(at, &pages), (vec![vec![2], vec![3]], 1));
        // A service that honours the position loses nothing to the check.
        let honest = [P(&[4, 5], 0, &[], F::Continuation(5))];
        assert_eq!(
            delivered(StartingPosition::after_sequence_number(seq(3)), &honest),
            (vec![vec![4, 5]], 0)
        );
    }

    #[test]
    fn positions_do_not_keep_the_response_alive() {
        let mut cursor = ShardCursor::new(
            id(0),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            false,
            None,
        );
        let delivered = cursor
            .advance(page(&P(&[4], 0, &[], F::Iterator)), Instant::now())
            .records;
        let kept = cursor.position().sequence_number.clone().unwrap();
        assert_eq!(kept, delivered[0].sequence_number);
        assert_ne!(
            kept.into_bytes().as_ptr(),
            delivered[0].sequence_number.clone().into_bytes().as_ptr(),
            "the position is a copy of its own"
        );
    }

    #[test]
    fn idleness_is_measured_from_the_last_delivery() {
        let mut cursor = ShardCursor::new(
            id(0),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            false,
            None,
        );
        let start = Instant::now();
        assert_eq!(cursor.idle_for(start), None);
        cursor.advance(page(&P(&[1], 0, &[], F::Iterator)), start);
        cursor.advance(
            page(&P(&[], 0, &[], F::Iterator)),
            start + Duration::from_secs(5),
        );
        assert_eq!(
            cursor.idle_for(start + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(cursor.delivered(), 1);
    }
}
