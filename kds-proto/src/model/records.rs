//! Records of a GetRecords page or a SubscribeToShard event, lent one at a time.
//!
//! [`GetRecordsOutput::visit_records`] and [`SubscribeToShardEvent::visit_records`] decode the
//! same documents as [`Shape::decode_body`](crate::Shape::decode_body), but lend each record to a
//! closure as a [`RecordRef`]. Records in the common CBOR and JSON encodings are read into
//! buffers reused from record to record, without an allocation per record; any other record
//! goes through the general decoder. Record data is the same zero-copy [`Bytes`] as in the owned decode (a slice
//! of a CBOR body, or of one buffer of decoded base64 for JSON).

use bytes::Bytes;

use super::{
    ChildShard, GetRecordsOutput, Record, SubscribeToShardEvent, decode_member, duplicate, missing,
};
use crate::Protocol;
use crate::codec::{Reader, RecordFields, Value, cbor::CborReader, json::JsonReader};
use crate::error::DecodeError;
use crate::types::{EncryptionType, PartitionKey, SequenceNumber, ShardIterator, Timestamp};

/// A record lent by `visit_records`.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    /// The sequence number (checked: a decimal without leading zeros).
    pub sequence_number: &'a str,
    /// The partition key (checked: 1 to 256 UTF-16 units).
    pub partition_key: &'a str,
    /// The data; clone it to keep it (no copy).
    pub data: &'a Bytes,
    /// When the service accepted the record.
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// How the record was encrypted at rest.
    pub encryption_type: Option<&'a EncryptionType>,
}

impl RecordRef<'_> {
    /// The record as an owned [`Record`].
    pub fn to_record(&self) -> Record {
        // Both strings were checked when they were read.
        let sequence_number = SequenceNumber::from_checked(self.sequence_number.to_owned());
        let partition_key = PartitionKey::from_checked(self.partition_key.to_owned());
        let mut record = Record::new(sequence_number, self.data.clone(), partition_key);
        record.approximate_arrival_timestamp = self.approximate_arrival_timestamp;
        record.encryption_type = self.encryption_type.cloned();
        record
    }
}

/// Everything but the records of a GetRecords page or a SubscribeToShard event.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RecordsPage {
    /// How many records were visited.
    pub records: usize,
    /// GetRecords: where to read next.
    pub next_shard_iterator: Option<ShardIterator>,
    /// SubscribeToShard: where to resume.
    pub continuation_sequence_number: Option<SequenceNumber>,
    /// How far behind the tip of the shard the page is, in milliseconds.
    pub millis_behind_latest: Option<i64>,
    /// The shard's children, at its end.
    pub child_shards: Option<Vec<ChildShard>>,
}

type Scratch = RecordFields;

#[cfg(any(test, fuzzing))]
thread_local! {
    static GENERAL_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the record fast paths off, so that it gets the general decoder's answer: the
/// oracle of the differential tests and fuzz targets.
#[cfg(any(test, fuzzing))]
pub(crate) fn general_only<T>(f: impl FnOnce() -> T) -> T {
    GENERAL_ONLY.set(true);
    let out = f();
    GENERAL_ONLY.set(false);
    out
}

/// Reads a record in the common form into `out`, unless the fast paths are off.
fn read_fast<R: Reader>(r: &mut R, out: &mut Scratch) -> bool {
    #[cfg(any(test, fuzzing))]
    if GENERAL_ONLY.get() {
        return false;
    }
    r.read_record_fast(out)
}

/// A record in the common CBOR or JSON form, read without the general decoder's per-member
/// dispatch; `None` (nothing consumed) for anything else.
pub(super) fn record_fast<R: Reader>(r: &mut R) -> Option<Record> {
    let mut fields = RecordFields::default();
    if !read_fast(r, &mut fields) {
        return None;
    }
    // Both strings were checked when they were read.
    let mut record = Record::new(
        SequenceNumber::from_checked_shared(fields.sequence_number),
        fields.data,
        PartitionKey::from_checked_shared(fields.partition_key),
    );
    record.approximate_arrival_timestamp = fields.approximate_arrival_timestamp;
    record.encryption_type = fields.encryption_type;
    Some(record)
}

fn lend(s: &Scratch) -> RecordRef<'_> {
    RecordRef {
        sequence_number: &s.sequence_number,
        partition_key: &s.partition_key,
        data: &s.data,
        approximate_arrival_timestamp: s.approximate_arrival_timestamp,
        encryption_type: s.encryption_type.as_ref(),
    }
}

/// Moves a record decoded by the general decoder into the reused buffers.
fn fill(s: &mut Scratch, record: Record) {
    s.sequence_number = record.sequence_number.into_shared();
    s.partition_key = record.partition_key.into_shared();
    s.data = record.data;
    s.approximate_arrival_timestamp = record.approximate_arrival_timestamp;
    s.encryption_type = record.encryption_type;
}

fn visit_page<R: Reader>(
    r: &mut R,
    event: bool,
    visit: &mut dyn FnMut(RecordRef<'_>),
) -> Result<RecordsPage, DecodeError> {
    #[derive(Clone, Copy)]
    enum Member {
        Records,
        NextShardIterator,
        ContinuationSequenceNumber,
        MillisBehindLatest,
        ChildShards,
    }
    // Each shape has its own members; the other shape's are unknown and skipped, as in
    // the general decoder.
    const GET_RECORDS: &[(&str, Member)] = &[
        ("Records", Member::Records),
        ("NextShardIterator", Member::NextShardIterator),
        ("MillisBehindLatest", Member::MillisBehindLatest),
        ("ChildShards", Member::ChildShards),
    ];
    const EVENT: &[(&str, Member)] = &[
        ("Records", Member::Records),
        (
            "ContinuationSequenceNumber",
            Member::ContinuationSequenceNumber,
        ),
        ("MillisBehindLatest", Member::MillisBehindLatest),
        ("ChildShards", Member::ChildShards),
    ];
    let keys = if event { EVENT } else { GET_RECORDS };
    r.lend_records();
    let start = r.offset();
    r.begin_map()?;
    let mut page = RecordsPage::default();
    let mut saw_records = false;
    let mut scratch = Scratch::default();
    while let Some(member) = r.next_key(keys)? {
        match member {
            Some(Member::Records) => {
                if saw_records {
                    return Err(duplicate("Records", r.offset()));
                }
                if r.take_null().map_err(|e| e.in_field("Records"))? {
                    continue;
                }
                r.begin_array().map_err(|e| e.in_field("Records"))?;
                while r.next_element().map_err(|e| e.in_field("Records"))? {
                    // The record before is dropped first, so its buffers serve this one.
                    scratch.release();
                    // The common encodings reuse the buffers; anything else (and every
                    // error) goes through the general decoder, so both agree.
                    if !read_fast(r, &mut scratch) {
                        let record = Record::decode(r)
                            .map_err(|e| e.at_index(page.records).in_field("Records"))?;
                        fill(&mut scratch, record);
                    }
                    visit(lend(&scratch));
                    page.records += 1;
                }
                saw_records = true;
            }
            Some(Member::NextShardIterator) => {
                if page.next_shard_iterator.is_some() {
                    return Err(duplicate("NextShardIterator", r.offset()));
                }
                page.next_shard_iterator = decode_member(r, "NextShardIterator")?;
            }
            Some(Member::ContinuationSequenceNumber) => {
                if page.continuation_sequence_number.is_some() {
                    return Err(duplicate("ContinuationSequenceNumber", r.offset()));
                }
                page.continuation_sequence_number = decode_member(r, "ContinuationSequenceNumber")?;
            }
            Some(Member::MillisBehindLatest) => {
                if page.millis_behind_latest.is_some() {
                    return Err(duplicate("MillisBehindLatest", r.offset()));
                }
                page.millis_behind_latest = decode_member(r, "MillisBehindLatest")?;
            }
            Some(Member::ChildShards) => {
                if page.child_shards.is_some() {
                    return Err(duplicate("ChildShards", r.offset()));
                }
                page.child_shards = decode_member(r, "ChildShards")?;
            }
            None => r.skip_value()?,
        }
    }
    if !saw_records {
        return Err(missing("Records", start));
    }
    r.finish()?;
    Ok(page)
}

fn visit_body(
    body: Bytes,
    protocol: Protocol,
    event: bool,
    visit: &mut dyn FnMut(RecordRef<'_>),
) -> Result<RecordsPage, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(missing("Records", 0));
    }
    match protocol {
        Protocol::Json => visit_page(&mut JsonReader::new(&body), event, visit),
        Protocol::Cbor => visit_page(&mut CborReader::new(body), event, visit),
    }
}

impl GetRecordsOutput {
    /// Decodes a GetRecords response body, lending each record to `visit` as it is read.
    ///
    /// Records are visited in order while the body is decoded: if decoding fails part-way (a
    /// corrupt body), the records visited so far belong to a response that must be discarded,
    /// and the shard iterator is unchanged. Members other than the records are returned.
    ///
    /// # Errors
    ///
    /// As [`Shape::decode_body`](crate::Shape::decode_body).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use kds_proto::Protocol;
    /// use kds_proto::model::GetRecordsOutput;
    ///
    /// let body = Bytes::from_static(br#"{"Records":[{"SequenceNumber":"7","Data":"aGk=","PartitionKey":"k"}],"NextShardIterator":"AAAA","MillisBehindLatest":0}"#);
    /// let mut total = 0;
    /// let page = GetRecordsOutput::visit_records(body, Protocol::Json, |record| total += record.data.len())?;
    /// assert_eq!((page.records, total), (1, 2));
    /// assert_eq!(page.next_shard_iterator.unwrap().as_str(), "AAAA");
    /// # Ok::<(), kds_proto::DecodeError>(())
    /// ```
    pub fn visit_records(
        body: Bytes,
        protocol: Protocol,
        mut visit: impl FnMut(RecordRef<'_>),
    ) -> Result<RecordsPage, DecodeError> {
        visit_body(body, protocol, false, &mut visit)
    }
}

impl SubscribeToShardEvent {
    /// Decodes a SubscribeToShardEvent payload, lending each record to `visit` as it is read.
    ///
    /// As [`GetRecordsOutput::visit_records`]; `MillisBehindLatest` is required here.
    ///
    /// # Errors
    ///
    /// As [`Shape::decode_body`](crate::Shape::decode_body).
    pub fn visit_records(
        body: Bytes,
        protocol: Protocol,
        mut visit: impl FnMut(RecordRef<'_>),
    ) -> Result<RecordsPage, DecodeError> {
        let page = visit_body(body, protocol, true, &mut visit)?;
        if page.millis_behind_latest.is_none() {
            return Err(missing("MillisBehindLatest", 0));
        }
        Ok(page)
    }
}
