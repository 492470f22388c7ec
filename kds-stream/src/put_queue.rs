//! The sans-I/O core of writing: Kinesis records buffered, cut into PutRecords requests by the
//! `sink.*` limits, entries that failed retried with full-jitter backoff up to a retry budget,
//! requests in flight bounded by an AIMD limit that halves on throttling, and per-partition-key
//! order kept when asked. The caller sends the requests and reports their outcomes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use kds_proto::model::{PutRecordsRequestEntry, PutRecordsResultEntry};
use kds_proto::types::ShardId;
use kds_proto::{ErrorClass, Limits};

use crate::sink::WriterConfig;

/// A record waiting to be written, with what the writer keeps about it.
#[derive(Debug)]
struct Queued<T> {
    entry: PutRecordsRequestEntry,
    /// Data and partition key bytes.
    size: usize,
    /// What the writer said about it (its user records, the shard it should land on).
    tag: T,
    /// Failed sends so far.
    attempts: u32,
    /// Not sent before (a retry's backoff).
    ready_at: Instant,
    /// When it was first buffered.
    added_at: Instant,
}

/// A request to send: its id (for [`PutQueue::completed`]) and its entries.
#[non_exhaustive]
#[derive(Debug)]
pub struct PutRequest {
    /// Names the request in [`PutQueue::completed`].
    pub id: u64,
    /// The PutRecords entries, in order.
    pub entries: Vec<PutRecordsRequestEntry>,
}

/// A record the service wrote.
#[non_exhaustive]
#[derive(Debug)]
pub struct Written<T> {
    /// What the caller tagged it with.
    pub tag: T,
    /// The entry as sent.
    pub entry: PutRecordsRequestEntry,
    /// The shard it landed on.
    pub shard_id: ShardId,
}

/// A record that will not be written: its retries ran out, its error cannot be retried, or
/// the writer fails on errors.
#[non_exhaustive]
#[derive(Debug)]
pub struct Failed<T> {
    /// What the caller tagged it with.
    pub tag: T,
    /// The last error code.
    pub code: String,
    /// The last error message.
    pub message: String,
}

/// What became of a request.
#[non_exhaustive]
#[derive(Debug)]
pub struct Completion<T> {
    /// Records written.
    pub written: Vec<Written<T>>,
    /// Records that will not be written.
    pub failed: Vec<Failed<T>>,
    /// Entries sent again later (throttled, failed or of a request that failed as a whole).
    pub retried: usize,
}

/// How a request failed as a whole.
#[derive(Clone, Debug)]
pub struct RequestFailure {
    /// The service's error code, or a word for a transport failure.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Throttling (the AIMD limit halves).
    pub throttled: bool,
    /// Retrying cannot help (access denied, an unknown stream).
    pub terminal: bool,
}

/// Kinesis records buffered and in flight: the sans-I/O core of [`RecordWriter`](crate::RecordWriter),
/// for callers that send requests their own way.
///
/// [`push`](Self::push) records (each with a tag the queue hands back), send each request
/// [`next_request`](Self::next_request) gives, and report its outcome to
/// [`completed`](Self::completed): written records come back with their shard, failed ones are
/// retried after a full-jitter backoff until the retry budget is spent, and requests in flight
/// are limited by an AIMD rule (halved on throttling, one more after each request without).
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use kds_proto::model::{PutRecordsRequestEntry, PutRecordsResultEntry};
/// use kds_proto::types::{PartitionKey, SequenceNumber, ShardId};
/// use kds_stream::{PutQueue, WriterConfig};
///
/// let mut queue = PutQueue::new(&WriterConfig::default());
/// let now = Instant::now();
/// let entry = PutRecordsRequestEntry::new(Bytes::from("row"), PartitionKey::new("k")?);
/// queue.push(entry, "row 0", now);
/// let request = queue.next_request(now, true).expect("flushing sends what waits");
/// // … send `request.entries` with PutRecords; the service answers:
/// let mut result = PutRecordsResultEntry::new();
/// result.shard_id = Some(ShardId::new("shardId-000000000000")?);
/// result.sequence_number = Some(SequenceNumber::new("1")?);
/// let done = queue.completed(request.id, Ok(vec![result]), now);
/// assert_eq!(done.written[0].tag, "row 0");
/// assert!(queue.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PutQueue<T> {
    limits: Limits,
    config: WriterConfig,
    buffer: VecDeque<Queued<T>>,
    buffered_bytes: usize,
    in_flight: HashMap<u64, Vec<Queued<T>>>,
    /// Partition keys with a record in flight (ordered mode).
    keys_in_flight: HashMap<String, usize>,
    /// The AIMD limit on requests in flight.
    allowed: f64,
    /// Buffered records that failed before (waiting for their backoff).
    retries_buffered: usize,
    next_id: u64,
}

impl<T> PutQueue<T> {
    /// A queue that cuts requests and retries records as `config` says (its aggregation
    /// aside), for a stream with the default record size limit.
    pub fn new(config: &WriterConfig) -> Self {
        Self::with_limits(config, Limits::default())
    }

    /// As [`new`](Self::new), for a stream with these `limits`.
    pub fn with_limits(config: &WriterConfig, limits: Limits) -> Self {
        let allowed = config.max_in_flight.max(1) as f64;
        Self {
            limits,
            config: config.clone(),
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            in_flight: HashMap::new(),
            keys_in_flight: HashMap::new(),
            allowed,
            retries_buffered: 0,
            next_id: 0,
        }
    }

    /// Buffers `entry`, tagged with `tag`, added at `now`.
    pub fn push(&mut self, entry: PutRecordsRequestEntry, tag: T, now: Instant) {
        let size = entry.data.len() + entry.partition_key.as_str().len();
        self.buffered_bytes += size;
        self.buffer.push_back(Queued {
            entry,
            size,
            tag,
            attempts: 0,
            ready_at: now,
            added_at: now,
        });
    }

    /// Whether writers must wait: the buffer holds its limit of records.
    pub fn is_full(&self) -> bool {
        self.buffer.len() >= self.config.max_buffered.max(1)
    }

    /// Records per request.
    fn batch_records(&self) -> usize {
        self.config
            .batch_records
            .clamp(1, Limits::MAX_PUT_RECORDS_ENTRIES)
    }

    /// The largest record (data and partition key) the stream accepts.
    pub fn max_record_size(&self) -> usize {
        self.limits.max_record_size
    }

    /// Nothing buffered and nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty() && self.in_flight.is_empty()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records buffered, not in flight.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The AIMD limit on requests in flight now.
    pub fn allowed_in_flight(&self) -> usize {
        self.allowed as usize
    }

    /// The next request to send at `now`, if the in-flight limit allows one and the buffer
    /// calls for one: a full request's worth of records or bytes, a record that waited
    /// `flush_after`, a retry whose backoff is over, or `flushing` (send whatever may go).
    pub fn next_request(&mut self, now: Instant, flushing: bool) -> Option<PutRequest> {
        if self.in_flight.len() >= self.allowed_in_flight().max(1) || self.buffer.is_empty() {
            return None;
        }
        let due = flushing
            || self.buffer.len() >= self.batch_records().min(self.config.max_buffered.max(1))
            || self.buffered_bytes >= self.config.flush_bytes
            || self.buffer.front().is_some_and(|q| {
                now.saturating_duration_since(q.added_at) >= self.config.flush_after
            })
            || (self.retries_buffered > 0
                && self
                    .buffer
                    .iter()
                    .any(|q| q.attempts > 0 && q.ready_at <= now));
        if !due {
            return None;
        }
        // Which records go: ready ones in order; in ordered mode only a key's earliest
        // record, and only when none of the key is in flight.
        let mut chosen = Vec::new();
        let mut bytes = 0;
        let mut seen_keys: HashSet<&str> = HashSet::new();
        for (i, queued) in self.buffer.iter().enumerate() {
            if chosen.len() == self.batch_records() {
                break;
            }
            if self.config.ordered {
                let key = queued.entry.partition_key.as_str();
                let first_of_key = seen_keys.insert(key);
                if !first_of_key || self.keys_in_flight.contains_key(key) {
                    continue;
                }
            }
            if queued.ready_at > now {
                continue;
            }
            if bytes + queued.size > Limits::MAX_PUT_RECORDS_BYTES && !chosen.is_empty() {
                break;
            }
            bytes += queued.size;
            chosen.push(i);
        }
        if chosen.is_empty() {
            return None;
        }
        let taken: Vec<Queued<T>> = if chosen.last() == Some(&(chosen.len() - 1)) {
            // The front of the buffer (the usual case).
            self.buffer.drain(..chosen.len()).collect()
        } else {
            // Removed back to front so that the indexes stay valid; restored to request order.
            let mut taken = Vec::with_capacity(chosen.len());
            for &i in chosen.iter().rev() {
                taken.push(self.buffer.remove(i).expect("an index of the buffer"));
            }
            taken.reverse();
            taken
        };
        self.retries_buffered -= taken.iter().filter(|q| q.attempts > 0).count();
        self.buffered_bytes -= bytes;
        if self.config.ordered {
            for queued in &taken {
                *self
                    .keys_in_flight
                    .entry(queued.entry.partition_key.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let entries = taken.iter().map(|q| q.entry.clone()).collect();
        self.in_flight.insert(id, taken);
        Some(PutRequest { id, entries })
    }

    /// When the next request may become due by the clock alone (a waiting record's
    /// `flush_after`, a retry's backoff); `None` when nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        let flush = self
            .buffer
            .front()
            .map(|q| q.added_at + self.config.flush_after);
        let retry = (self.retries_buffered > 0)
            .then(|| {
                self.buffer
                    .iter()
                    .filter(|q| q.attempts > 0)
                    .map(|q| q.ready_at)
                    .min()
            })
            .flatten();
        match (flush, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Request `id` came back at `now`: with one result per entry, or failed as a whole.
    pub fn completed(
        &mut self,
        id: u64,
        outcome: Result<Vec<PutRecordsResultEntry>, RequestFailure>,
        now: Instant,
    ) -> Completion<T> {
        let taken = self.in_flight.remove(&id).unwrap_or_default();
        if self.config.ordered {
            for queued in &taken {
                let key = queued.entry.partition_key.as_str();
                if let Some(count) = self.keys_in_flight.get_mut(key) {
                    *count -= 1;
                    if *count == 0 {
                        self.keys_in_flight.remove(key);
                    }
                }
            }
        }
        let mut completion = Completion {
            written: Vec::new(),
            failed: Vec::new(),
            retried: 0,
        };
        let mut throttled = false;
        let mut again = Vec::new();
        match outcome {
            Ok(results) => {
                for (queued, result) in taken.into_iter().zip(results) {
                    match (result.error_class(), result.shard_id) {
                        (None, Some(shard_id)) => completion.written.push(Written {
                            tag: queued.tag,
                            entry: queued.entry,
                            shard_id,
                        }),
                        (class, _) => {
                            throttled |= class == Some(ErrorClass::Throttling);
                            let retryable = matches!(
                                class,
                                Some(ErrorClass::Throttling | ErrorClass::Transient)
                            );
                            let code = result
                                .error_code
                                .unwrap_or_else(|| "MissingShardId".to_owned());
                            let message = result.error_message.unwrap_or_default();
                            again.push((queued, retryable, code, message));
                        }
                    }
                }
            }
            Err(failure) => {
                throttled = failure.throttled;
                for queued in taken {
                    again.push((
                        queued,
                        !failure.terminal,
                        failure.code.clone(),
                        failure.message.clone(),
                    ));
                }
            }
        }
        // AIMD: halve on throttling, one more after a request without it.
        let max = self.config.max_in_flight.max(1) as f64;
        self.allowed = if throttled {
            (self.allowed / 2.0).max(1.0)
        } else {
            (self.allowed + 1.0).min(max)
        };
        // Retries go back to the front in their order, so that each key's order holds.
        for (mut queued, retryable, code, message) in again.into_iter().rev() {
            if !retryable
                || self.config.fail_on_error
                || queued.attempts >= self.config.retry.max_retries
            {
                completion.failed.push(Failed {
                    tag: queued.tag,
                    code,
                    message,
                });
                continue;
            }
            queued.ready_at = now + self.config.retry.backoff(queued.attempts, fastrand::f64());
            queued.attempts += 1;
            completion.retried += 1;
            self.buffered_bytes += queued.size;
            self.retries_buffered += 1;
            self.buffer.push_front(queued);
        }
        completion.failed.reverse();
        completion
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kds_client::RetryPolicy;
    use kds_proto::types::PartitionKey;
    use std::time::Duration;

    fn limits() -> WriterConfig {
        WriterConfig {
            batch_records: 3,
            max_in_flight: 4,
            max_buffered: 10,
            flush_bytes: 100,
            flush_after: Duration::from_secs(5),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(100),
                max: Duration::from_secs(1),
                exponential_constant: 2.0,
            },
            ..WriterConfig::default()
        }
    }

    fn entry(key: &str, data: &str) -> PutRecordsRequestEntry {
        PutRecordsRequestEntry::new(
            Bytes::from(data.to_owned()),
            PartitionKey::new(key.to_owned()).unwrap(),
        )
    }

    fn written(shard: u32) -> PutRecordsResultEntry {
        let mut result = PutRecordsResultEntry::new();
        result.shard_id = Some(ShardId::new(format!("shardId-{shard:012}")).unwrap());
        result.sequence_number = Some(kds_proto::types::SequenceNumber::new("1").unwrap());
        result
    }

    fn failed(code: &str) -> PutRecordsResultEntry {
        let mut result = PutRecordsResultEntry::new();
        result.error_code = Some(code.to_owned());
        result.error_message = Some("no".to_owned());
        result
    }

    fn data(request: &PutRequest) -> Vec<String> {
        request
            .entries
            .iter()
            .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn requests_go_when_full_by_count_bytes_or_age_or_when_flushing() {
        let now = Instant::now();
        let mut queue = PutQueue::new(&limits());
        queue.push(entry("a", "1"), (), now);
        queue.push(entry("b", "2"), (), now);
        assert!(queue.next_request(now, false).is_none(), "two of three");
        queue.push(entry("c", "3"), (), now);
        queue.push(entry("d", "4"), (), now);
        let request = queue.next_request(now, false).unwrap();
        assert_eq!(data(&request), ["1", "2", "3"]);
        assert!(queue.next_request(now, false).is_none());
        assert_eq!(queue.next_due(), Some(now + Duration::from_secs(5)));
        let later = now + Duration::from_secs(5);
        assert_eq!(data(&queue.next_request(later, false).unwrap()), ["4"]);
        // Bytes: a 99-byte record and its 1-byte key fill the flush threshold.
        queue.push(entry("e", &"x".repeat(99)), (), now);
        assert_eq!(queue.next_request(now, false).unwrap().entries.len(), 1);
        queue.push(entry("f", "6"), (), now);
        assert!(queue.next_request(now, false).is_none());
        assert_eq!(data(&queue.next_request(now, true).unwrap()), ["6"]);
    }

    #[test]
    fn a_request_never_passes_its_byte_limit() {
        let now = Instant::now();
        let mut queue = PutQueue::new(&limits());
        let big = "x".repeat(4 * 1024 * 1024);
        for key in ["a", "b", "c"] {
            queue.push(entry(key, &big), key, now);
        }
        // Two records of 4 MiB fit in a request's 10 MiB, three do not.
        let first = queue.next_request(now, true).unwrap();
        assert_eq!(first.entries.len(), 2);
        assert_eq!(queue.next_request(now, true).unwrap().entries.len(), 1);
    }

    #[test]
    fn failed_entries_come_back_first_after_their_backoff() {
        let now = Instant::now();
        let mut queue = PutQueue::new(&limits());
        for (key, data) in [("a", "1"), ("b", "2"), ("c", "3")] {
            queue.push(entry(key, data), data.to_owned(), now);
        }
        let request = queue.next_request(now, true).unwrap();
        let done = queue.completed(
            request.id,
            Ok(vec![
                written(0),
                failed("ProvisionedThroughputExceededException"),
                failed("AccessDeniedException"),
            ]),
            now,
        );
        assert_eq!(done.written.len(), 1);
        assert_eq!(done.written[0].tag, "1");
        assert_eq!(done.retried, 1);
        assert_eq!(done.failed.len(), 1, "access denied is not retried");
        assert_eq!(done.failed[0].code, "AccessDeniedException");
        queue.push(entry("d", "4"), "4".to_owned(), now);
        // The retry waits for its backoff (at most 100 ms); then it goes first.
        let after = now + Duration::from_millis(100);
        assert!(queue.next_due().unwrap() <= after);
        assert_eq!(data(&queue.next_request(after, true).unwrap()), ["2", "4"]);
    }

    #[test]
    fn the_retry_budget_ends_in_a_failure_and_fail_on_error_ends_at_once() {
        let now = Instant::now();
        let mut queue = PutQueue::new(&limits());
        queue.push(entry("a", "1"), (), now);
        let mut at = now;
        let mut retried = 0;
        loop {
            at += Duration::from_secs(1);
            let request = queue.next_request(at, true).unwrap();
            let done = queue.completed(request.id, Ok(vec![failed("InternalFailure")]), at);
            retried += done.retried;
            if !done.failed.is_empty() {
                assert_eq!(done.failed[0].code, "InternalFailure");
                break;
            }
        }
        assert_eq!(retried, 2, "the budget");
        assert!(queue.is_empty());
        let mut limits = limits();
        limits.fail_on_error = true;
        let mut queue = PutQueue::new(&limits);
        queue.push(entry("a", "1"), (), now);
        let request = queue.next_request(now, true).unwrap();
        let done = queue.completed(
            request.id,
            Ok(vec![failed("ProvisionedThroughputExceededException")]),
            now,
        );
        assert_eq!((done.retried, done.failed.len()), (0, 1));
    }

    #[test]
    fn throttling_halves_the_requests_in_flight_and_successes_add_one() {
        let now = Instant::now();
        let mut limits = limits();
        limits.max_in_flight = 8;
        limits.batch_records = 1;
        let mut queue = PutQueue::new(&limits);
        assert_eq!(queue.allowed_in_flight(), 8);
        let throttle = RequestFailure {
            code: "ProvisionedThroughputExceededException".to_owned(),
            message: String::new(),
            throttled: true,
            terminal: false,
        };
        queue.push(entry("a", "1"), (), now);
        let request = queue.next_request(now, true).unwrap();
        let done = queue.completed(request.id, Err(throttle), now);
        assert_eq!(done.retried, 1);
        assert_eq!(queue.allowed_in_flight(), 4);
        // Four requests may be in flight, not five.
        for n in 0..6 {
            queue.push(entry("k", &n.to_string()), (), now);
        }
        let later = now + Duration::from_secs(1);
        let sent: Vec<PutRequest> =
            std::iter::from_fn(|| queue.next_request(later, true)).collect();
        assert_eq!(sent.len(), 4);
        queue.completed(sent[0].id, Ok(vec![written(0)]), later);
        assert_eq!(queue.allowed_in_flight(), 5);
    }

    #[test]
    fn ordered_requests_hold_one_record_per_key_and_wait_for_the_key_before() {
        let now = Instant::now();
        let mut limits = limits();
        limits.ordered = true;
        limits.batch_records = 10;
        let mut queue = PutQueue::new(&limits);
        for (key, data) in [
            ("a", "a1"),
            ("a", "a2"),
            ("b", "b1"),
            ("a", "a3"),
            ("b", "b2"),
        ] {
            queue.push(entry(key, data), (), now);
        }
        let first = queue.next_request(now, true).unwrap();
        assert_eq!(data(&first), ["a1", "b1"]);
        assert!(
            queue.next_request(now, true).is_none(),
            "a and b are in flight"
        );
        // a1 is throttled, b1 written: a1 goes before a2, b2 follows b1.
        queue.completed(
            first.id,
            Ok(vec![
                failed("ProvisionedThroughputExceededException"),
                written(1),
            ]),
            now,
        );
        let at = now + Duration::from_secs(1);
        assert_eq!(data(&queue.next_request(at, true).unwrap()), ["a1", "b2"]);
    }
}
