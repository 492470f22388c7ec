//! The shapes, member by member, as the Kinesis model (2013-12-02) defines them.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Limits;
use super::validate::{absent, known, position, range, record_size, required, stream_given, tags};
use crate::error::{ValidationError, ValidationErrorKind};
use crate::service_error::{ErrorClass, classify};
use crate::types::{
    ConsumerArn, ConsumerName, ConsumerStatus, EncryptionType, HashKey, MetricsName, PartitionKey,
    ScalingType, SequenceNumber, ShardFilterType, ShardId, ShardIterator, ShardIteratorType,
    StreamArn, StreamMode, StreamName, StreamStatus, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// Structures shared by several operations.

shape! {
    /// A range of hash keys, both ends included.
    HashKeyRange {
        required {
            /// The first hash key of the range.
            starting_hash_key: HashKey = "StartingHashKey",
            /// The last hash key of the range.
            ending_hash_key: HashKey = "EndingHashKey",
        }
        optional {}
    }
}

impl HashKeyRange {
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: HashKey) -> bool {
        self.starting_hash_key <= key && key <= self.ending_hash_key
    }
}

shape! {
    /// The sequence numbers a shard spans.
    SequenceNumberRange {
        required {
            /// The shard's first sequence number.
            starting_sequence_number: SequenceNumber = "StartingSequenceNumber",
        }
        optional {
            /// The shard's last sequence number; present once the shard is closed.
            ending_sequence_number: SequenceNumber = "EndingSequenceNumber",
        }
    }
}

shape! {
    /// A shard, as ListShards and DescribeStream describe it.
    Shard {
        required {
            /// The shard's id.
            shard_id: ShardId = "ShardId",
            /// The hash keys the shard owns.
            hash_key_range: HashKeyRange = "HashKeyRange",
            /// The sequence numbers the shard spans.
            sequence_number_range: SequenceNumberRange = "SequenceNumberRange",
        }
        optional {
            /// The shard this one was split from or merged from.
            parent_shard_id: ShardId = "ParentShardId",
            /// The second parent of a merged shard.
            adjacent_parent_shard_id: ShardId = "AdjacentParentShardId",
        }
    }
}

impl Shard {
    /// Whether the shard is closed (it has an ending sequence number).
    pub fn is_closed(&self) -> bool {
        self.sequence_number_range.ending_sequence_number.is_some()
    }
}

shape! {
    /// A shard created by resharding, reported when its parent ends.
    ChildShard {
        required {
            /// The child's id.
            shard_id: ShardId = "ShardId",
            /// Its parents (one after a split, two after a merge).
            parent_shards: Vec<ShardId> = "ParentShards",
            /// The hash keys it owns.
            hash_key_range: HashKeyRange = "HashKeyRange",
        }
        optional {}
    }
}

shape! {
    /// A data record as GetRecords and SubscribeToShard deliver it.
    Record {
        fast: super::records::record_fast;
        required {
            /// The record's sequence number, unique within its shard.
            sequence_number: SequenceNumber = "SequenceNumber",
            /// The record's data, as written.
            data: Bytes = "Data",
            /// The partition key it was written with.
            partition_key: PartitionKey = "PartitionKey",
        }
        optional {
            /// When the service accepted the record.
            approximate_arrival_timestamp: Timestamp = "ApproximateArrivalTimestamp",
            /// How the record was encrypted at rest.
            encryption_type: EncryptionType = "EncryptionType",
        }
    }
}

shape! {
    /// A registered enhanced fan-out consumer.
    Consumer {
        required {
            /// The consumer's name.
            consumer_name: ConsumerName = "ConsumerName",
            /// The consumer's ARN.
            consumer_arn: ConsumerArn = "ConsumerARN",
            /// Whether it can subscribe yet.
            consumer_status: ConsumerStatus = "ConsumerStatus",
            /// When it was registered.
            consumer_creation_timestamp: Timestamp = "ConsumerCreationTimestamp",
        }
        optional {}
    }
}

shape! {
    /// A consumer and the stream it belongs to.
    ConsumerDescription {
        required {
            /// The consumer's name.
            consumer_name: ConsumerName = "ConsumerName",
            /// The consumer's ARN.
            consumer_arn: ConsumerArn = "ConsumerARN",
            /// Whether it can subscribe yet.
            consumer_status: ConsumerStatus = "ConsumerStatus",
            /// When it was registered.
            consumer_creation_timestamp: Timestamp = "ConsumerCreationTimestamp",
        }
        optional {
            /// The stream's ARN. AWS always sends it; some emulators (ferrokinesis 0.7) do not,
            /// and nothing here needs it.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// The capacity mode of a stream.
    StreamModeDetails {
        required {
            /// Provisioned or on-demand.
            stream_mode: StreamMode = "StreamMode",
        }
        optional {}
    }
}

shape! {
    /// The shard-level metrics enabled on a stream.
    EnhancedMetrics {
        required {}
        optional {
            /// The enabled metrics.
            shard_level_metrics: Vec<MetricsName> = "ShardLevelMetrics",
        }
    }
}

shape! {
    /// Pre-warmed throughput of an on-demand stream.
    WarmThroughput {
        required {}
        optional {
            /// The throughput asked for, in MiB/s.
            target_mi_bps: i32 = "TargetMiBps",
            /// The throughput in place, in MiB/s.
            current_mi_bps: i32 = "CurrentMiBps",
        }
    }
}

shape! {
    /// A stream, with one page of its shards (DescribeStream).
    StreamDescription {
        required {
            /// The stream's name.
            stream_name: StreamName = "StreamName",
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
            /// The stream's state.
            stream_status: StreamStatus = "StreamStatus",
            /// One page of shards.
            shards: Vec<Shard> = "Shards",
            /// Whether more shards follow this page.
            has_more_shards: bool = "HasMoreShards",
            /// How long records are kept.
            retention_period_hours: i32 = "RetentionPeriodHours",
            /// When the stream was created.
            stream_creation_timestamp: Timestamp = "StreamCreationTimestamp",
        }
        optional {
            /// Capacity mode.
            stream_mode_details: StreamModeDetails = "StreamModeDetails",
            /// Enabled shard-level metrics (the model requires it; emulators omit it).
            enhanced_monitoring: Vec<EnhancedMetrics> = "EnhancedMonitoring",
            /// Encryption at rest.
            encryption_type: EncryptionType = "EncryptionType",
            /// The KMS key, when encrypted.
            key_id: String = "KeyId",
        }
    }
}

shape! {
    /// A stream without its shards (DescribeStreamSummary).
    StreamDescriptionSummary {
        required {
            /// The stream's name.
            stream_name: StreamName = "StreamName",
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
            /// The stream's state.
            stream_status: StreamStatus = "StreamStatus",
            /// How long records are kept.
            retention_period_hours: i32 = "RetentionPeriodHours",
            /// When the stream was created.
            stream_creation_timestamp: Timestamp = "StreamCreationTimestamp",
            /// How many shards are open.
            open_shard_count: i32 = "OpenShardCount",
        }
        optional {
            /// The stream's id (reserved by the service for future use).
            stream_id: String = "StreamId",
            /// Capacity mode.
            stream_mode_details: StreamModeDetails = "StreamModeDetails",
            /// Enabled shard-level metrics (the model requires it; emulators omit it).
            enhanced_monitoring: Vec<EnhancedMetrics> = "EnhancedMonitoring",
            /// Encryption at rest.
            encryption_type: EncryptionType = "EncryptionType",
            /// The KMS key, when encrypted.
            key_id: String = "KeyId",
            /// How many enhanced fan-out consumers are registered.
            consumer_count: i32 = "ConsumerCount",
            /// Pre-warmed throughput.
            warm_throughput: WarmThroughput = "WarmThroughput",
            /// The largest record the stream accepts, in KiB.
            max_record_size_in_kib: i32 = "MaxRecordSizeInKiB",
        }
    }
}

shape! {
    /// A stream in a ListStreams page.
    StreamSummary {
        required {
            /// The stream's name.
            stream_name: StreamName = "StreamName",
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
            /// The stream's state.
            stream_status: StreamStatus = "StreamStatus",
        }
        optional {
            /// Capacity mode.
            stream_mode_details: StreamModeDetails = "StreamModeDetails",
            /// When the stream was created.
            stream_creation_timestamp: Timestamp = "StreamCreationTimestamp",
        }
    }
}

shape! {
    /// Which shards ListShards returns.
    ShardFilter {
        required {
            /// The kind of filter.
            r#type: ShardFilterType = "Type",
        }
        optional {
            /// For AFTER_SHARD_ID.
            shard_id: ShardId = "ShardId",
            /// For AT_TIMESTAMP and FROM_TIMESTAMP.
            timestamp: Timestamp = "Timestamp",
        }
    }
}

shape! {
    /// Where a subscription starts.
    StartingPosition {
        required {
            /// The kind of position.
            r#type: ShardIteratorType = "Type",
        }
        optional {
            /// For AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
            sequence_number: SequenceNumber = "SequenceNumber",
            /// For AT_TIMESTAMP.
            timestamp: Timestamp = "Timestamp",
        }
    }
}

impl StartingPosition {
    /// Right after the record with this sequence number (AFTER_SEQUENCE_NUMBER): where a
    /// reader resumes.
    pub fn after_sequence_number(sequence_number: SequenceNumber) -> Self {
        let mut position = Self::new(ShardIteratorType::AfterSequenceNumber);
        position.sequence_number = Some(sequence_number);
        position
    }

    /// At the record with this sequence number (AT_SEQUENCE_NUMBER).
    pub fn at_sequence_number(sequence_number: SequenceNumber) -> Self {
        let mut position = Self::new(ShardIteratorType::AtSequenceNumber);
        position.sequence_number = Some(sequence_number);
        position
    }

    /// At the first record that arrived at or after `timestamp` (AT_TIMESTAMP).
    pub fn at_timestamp(timestamp: Timestamp) -> Self {
        let mut position = Self::new(ShardIteratorType::AtTimestamp);
        position.timestamp = Some(timestamp);
        position
    }
}

shape! {
    /// The output of operations that return nothing (CreateStream, SplitShard, …). Any members a
    /// server sends anyway are skipped.
    Empty {
        required {}
        optional {}
    }
}

// ---------------------------------------------------------------------------------------------
// PutRecord, PutRecords

shape! {
    /// Writes one record.
    PutRecordInput {
        required {
            /// The record's data.
            data: Bytes = "Data",
            /// Chooses the shard (through its MD5) unless `explicit_hash_key` is set.
            partition_key: PartitionKey = "PartitionKey",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
            /// Chooses the shard directly.
            explicit_hash_key: HashKey = "ExplicitHashKey",
            /// The previous record's sequence number, for strict ordering per partition key.
            sequence_number_for_ordering: SequenceNumber = "SequenceNumberForOrdering",
        }
    }
}

shape! {
    /// Where PutRecord wrote the record.
    PutRecordOutput {
        required {
            /// The shard that took the record.
            shard_id: ShardId = "ShardId",
            /// The record's sequence number.
            sequence_number: SequenceNumber = "SequenceNumber",
        }
        optional {
            /// Encryption at rest.
            encryption_type: EncryptionType = "EncryptionType",
        }
    }
}

operation!(PutRecordInput => PutRecordOutput, "PutRecord", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    record_size("Data", this.data.len(), this.partition_key.as_str().len(), limits.max_record_size)
});

shape! {
    /// One record of a PutRecords request.
    PutRecordsRequestEntry {
        required {
            /// The record's data.
            data: Bytes = "Data",
            /// Chooses the shard (through its MD5) unless `explicit_hash_key` is set.
            partition_key: PartitionKey = "PartitionKey",
        }
        optional {
            /// Chooses the shard directly.
            explicit_hash_key: HashKey = "ExplicitHashKey",
        }
    }
}

shape! {
    /// Writes up to 500 records in one call.
    PutRecordsInput {
        required {
            /// The records, 1 to 500, at most 10 MiB of data and keys in all.
            records: Vec<PutRecordsRequestEntry> = "Records",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// The outcome of one PutRecords entry: a shard and sequence number, or an error.
    PutRecordsResultEntry {
        required {}
        optional {
            /// The record's sequence number, on success.
            sequence_number: SequenceNumber = "SequenceNumber",
            /// The shard that took the record, on success.
            shard_id: ShardId = "ShardId",
            /// The error code, on failure (ProvisionedThroughputExceededException or InternalFailure).
            error_code: String = "ErrorCode",
            /// The error message, on failure.
            error_message: String = "ErrorMessage",
        }
    }
}

impl PutRecordsResultEntry {
    /// Whether the entry failed.
    pub fn is_failure(&self) -> bool {
        self.error_code.is_some()
    }

    /// How a failed entry should be handled (`None` on success).
    pub fn error_class(&self) -> Option<ErrorClass> {
        self.error_code.as_deref().map(|code| classify(code, 200))
    }
}

shape! {
    /// The outcome of PutRecords, one entry per request entry, in order.
    PutRecordsOutput {
        required {
            /// One result per request entry, in request order.
            records: Vec<PutRecordsResultEntry> = "Records",
        }
        optional {
            /// How many entries failed (absent is 0).
            failed_record_count: i32 = "FailedRecordCount",
            /// Encryption at rest.
            encryption_type: EncryptionType = "EncryptionType",
        }
    }
}

impl PutRecordsOutput {
    /// The failed entries with their index in the request.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &PutRecordsResultEntry)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.is_failure())
    }
}

operation!(PutRecordsInput => PutRecordsOutput, "PutRecords", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    let count = this.records.len();
    if count == 0 {
        return Err(ValidationError::new(ValidationErrorKind::Length, "Records", "must have at least one entry"));
    }
    if count > Limits::MAX_PUT_RECORDS_ENTRIES {
        return Err(ValidationError::new(
            ValidationErrorKind::TooManyRecords,
            "Records",
            format!("has {count} entries, over the limit of {}", Limits::MAX_PUT_RECORDS_ENTRIES),
        ));
    }
    let mut total = 0usize;
    for (i, entry) in this.records.iter().enumerate() {
        let key = entry.partition_key.as_str().len();
        record_size("Data", entry.data.len(), key, limits.max_record_size)
            .map_err(|e| e.within(&format!("Records[{i}]")))?;
        total += entry.data.len() + key;
    }
    if total > Limits::MAX_PUT_RECORDS_BYTES {
        return Err(ValidationError::new(
            ValidationErrorKind::RequestTooLarge,
            "Records",
            format!("carries {total} bytes of data and keys, over the limit of {}", Limits::MAX_PUT_RECORDS_BYTES),
        ));
    }
    Ok(())
});

// ---------------------------------------------------------------------------------------------
// GetShardIterator, GetRecords

shape! {
    /// Asks for an iterator into a shard.
    GetShardIteratorInput {
        required {
            /// The shard to read.
            shard_id: ShardId = "ShardId",
            /// Where to start.
            shard_iterator_type: ShardIteratorType = "ShardIteratorType",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
            /// For AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
            starting_sequence_number: SequenceNumber = "StartingSequenceNumber",
            /// For AT_TIMESTAMP.
            timestamp: Timestamp = "Timestamp",
        }
    }
}

shape! {
    /// A fresh shard iterator.
    GetShardIteratorOutput {
        required {}
        optional {
            /// The iterator, valid for five minutes.
            shard_iterator: ShardIterator = "ShardIterator",
        }
    }
}

operation!(GetShardIteratorInput => GetShardIteratorOutput, "GetShardIterator", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| Some(this.shard_id.as_str()), |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    position(
        &this.shard_iterator_type,
        "ShardIteratorType",
        this.starting_sequence_number.as_ref(),
        "StartingSequenceNumber",
        this.timestamp.as_ref(),
        "Timestamp",
    )
});

shape! {
    /// Reads records at a shard iterator.
    GetRecordsInput {
        required {
            /// Where to read.
            shard_iterator: ShardIterator = "ShardIterator",
        }
        optional {
            /// At most this many records, 1 to 10000 (the default).
            limit: i32 = "Limit",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// Records and where to read next.
    GetRecordsOutput {
        required {
            /// The records, possibly none.
            records: Vec<Record> = "Records",
        }
        optional {
            /// Where to read next; absent once a closed shard is exhausted.
            next_shard_iterator: ShardIterator = "NextShardIterator",
            /// How far behind the tip of the shard the response is, in milliseconds.
            millis_behind_latest: i64 = "MillisBehindLatest",
            /// The shard's children, at its end.
            child_shards: Vec<ChildShard> = "ChildShards",
        }
    }
}

operation!(GetRecordsInput => GetRecordsOutput, "GetRecords", stream: |this| this.stream_arn.as_ref().map(StreamArn::as_str), shard: |this| None, |this, limits| {
    range("Limit", this.limit.map(i64::from), 1, 10_000)
});

// ---------------------------------------------------------------------------------------------
// ListShards, DescribeStream, DescribeStreamSummary

shape! {
    /// Lists a stream's shards, a page at a time.
    ///
    /// The first page names the stream; later pages send only `next_token` (and `max_results`):
    /// [`ListShardsInput::next_page`] builds them.
    ListShardsInput {
        required {}
        optional {
            /// The stream, by name (first page only).
            stream_name: StreamName = "StreamName",
            /// The token from the previous page.
            next_token: String = "NextToken",
            /// List shards after this one (first page only).
            exclusive_start_shard_id: ShardId = "ExclusiveStartShardId",
            /// Page size, 1 to 10000 (the service caps it at 1000).
            max_results: i32 = "MaxResults",
            /// Tells apart streams of the same name (first page only).
            stream_creation_timestamp: Timestamp = "StreamCreationTimestamp",
            /// Which shards to list (first page only).
            shard_filter: ShardFilter = "ShardFilter",
            /// The stream, by ARN (first page only).
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

impl ListShardsInput {
    /// The request for the page after a response that carried `next_token`: only the token
    /// and the page size, as the paging rule requires.
    pub fn next_page(&self, next_token: String) -> Self {
        let mut next = Self::new();
        next.next_token = Some(next_token);
        next.max_results = self.max_results;
        next
    }
}

shape! {
    /// One page of shards.
    ListShardsOutput {
        required {}
        optional {
            /// The shards.
            shards: Vec<Shard> = "Shards",
            /// The token for the next page; absent on the last.
            next_token: String = "NextToken",
        }
    }
}

operation!(ListShardsInput => ListShardsOutput, "ListShards", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    range("MaxResults", this.max_results.map(i64::from), 1, 10_000)?;
    if this.next_token.is_some() {
        let because = "with NextToken";
        absent("StreamName", this.stream_name.as_ref(), because)?;
        absent("StreamARN", this.stream_arn.as_ref(), because)?;
        absent("ExclusiveStartShardId", this.exclusive_start_shard_id.as_ref(), because)?;
        absent("StreamCreationTimestamp", this.stream_creation_timestamp.as_ref(), because)?;
        return absent("ShardFilter", this.shard_filter.as_ref(), because);
    }
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    if let Some(filter) = &this.shard_filter {
        known("ShardFilter.Type", filter.r#type.is_known(), &filter.r#type.as_str())?;
        match filter.r#type {
            ShardFilterType::AfterShardId => required("ShardFilter.ShardId", filter.shard_id.as_ref())?,
            ShardFilterType::AtTimestamp | ShardFilterType::FromTimestamp => {
                required("ShardFilter.Timestamp", filter.timestamp.as_ref())?;
            }
            _ => {}
        }
    }
    Ok(())
});

shape! {
    /// Describes a stream and a page of its shards (prefer DescribeStreamSummary and ListShards).
    DescribeStreamInput {
        required {}
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// Shards per page, 1 to 10000 (the service caps it at 100).
            limit: i32 = "Limit",
            /// Describe shards after this one.
            exclusive_start_shard_id: ShardId = "ExclusiveStartShardId",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// The stream's description.
    DescribeStreamOutput {
        required {
            /// The description.
            stream_description: StreamDescription = "StreamDescription",
        }
        optional {}
    }
}

operation!(DescribeStreamInput => DescribeStreamOutput, "DescribeStream", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    range("Limit", this.limit.map(i64::from), 1, 10_000)
});

shape! {
    /// Describes a stream without its shards.
    DescribeStreamSummaryInput {
        required {}
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// The stream's summary.
    DescribeStreamSummaryOutput {
        required {
            /// The summary.
            stream_description_summary: StreamDescriptionSummary = "StreamDescriptionSummary",
        }
        optional {}
    }
}

operation!(DescribeStreamSummaryInput => DescribeStreamSummaryOutput, "DescribeStreamSummary", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())
});

// ---------------------------------------------------------------------------------------------
// CreateStream, DeleteStream, ListStreams

shape! {
    /// Creates a stream (asynchronously: it starts CREATING).
    CreateStreamInput {
        required {
            /// The new stream's name.
            stream_name: StreamName = "StreamName",
        }
        optional {
            /// Number of shards, for provisioned streams.
            shard_count: i32 = "ShardCount",
            /// Capacity mode (provisioned when absent).
            stream_mode_details: StreamModeDetails = "StreamModeDetails",
            /// Tags, 1 to 200.
            tags: BTreeMap<String, String> = "Tags",
            /// Pre-warmed throughput for on-demand streams, in MiB/s.
            warm_throughput_mi_bps: i32 = "WarmThroughputMiBps",
            /// The largest record to accept, 1024 to 10240 KiB.
            max_record_size_in_kib: i32 = "MaxRecordSizeInKiB",
        }
    }
}

operation!(CreateStreamInput => Empty, "CreateStream", stream: |this| Some(this.stream_name.as_str()), shard: |this| None, |this, limits| {
    let mode = this.stream_mode_details.as_ref().map(|d| &d.stream_mode);
    if let Some(mode) = mode {
        known("StreamModeDetails.StreamMode", mode.is_known(), &mode.as_str())?;
    }
    if !matches!(mode, Some(StreamMode::OnDemand)) {
        required("ShardCount", this.shard_count.as_ref())?;
    }
    range("ShardCount", this.shard_count.map(i64::from), 1, 100_000)?;
    tags("Tags", this.tags.as_ref())?;
    range("WarmThroughputMiBps", this.warm_throughput_mi_bps.map(i64::from), 0, i64::from(i32::MAX))?;
    range("MaxRecordSizeInKiB", this.max_record_size_in_kib.map(i64::from), 1024, 10_240)
});

shape! {
    /// Deletes a stream (asynchronously: it goes DELETING).
    DeleteStreamInput {
        required {}
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// Delete even with registered consumers.
            enforce_consumer_deletion: bool = "EnforceConsumerDeletion",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(DeleteStreamInput => Empty, "DeleteStream", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())
});

shape! {
    /// Lists the account's streams in the region.
    ListStreamsInput {
        required {}
        optional {
            /// Names per page, 1 to 10000 (the service caps it at 100).
            limit: i32 = "Limit",
            /// List names after this one (the fallback when no NextToken comes back).
            exclusive_start_stream_name: StreamName = "ExclusiveStartStreamName",
            /// The token from the previous page.
            next_token: String = "NextToken",
        }
    }
}

shape! {
    /// One page of stream names.
    ListStreamsOutput {
        required {
            /// The names.
            stream_names: Vec<StreamName> = "StreamNames",
            /// Whether more follow.
            has_more_streams: bool = "HasMoreStreams",
        }
        optional {
            /// The token for the next page.
            next_token: String = "NextToken",
            /// The streams with their ARN and state.
            stream_summaries: Vec<StreamSummary> = "StreamSummaries",
        }
    }
}

operation!(ListStreamsInput => ListStreamsOutput, "ListStreams", |this, limits| {
    range("Limit", this.limit.map(i64::from), 1, 10_000)
});

// ---------------------------------------------------------------------------------------------
// Consumers

shape! {
    /// Registers an enhanced fan-out consumer (it starts CREATING).
    RegisterStreamConsumerInput {
        required {
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
            /// The consumer's name, unique per stream.
            consumer_name: ConsumerName = "ConsumerName",
        }
        optional {
            /// Tags, 1 to 200.
            tags: BTreeMap<String, String> = "Tags",
        }
    }
}

shape! {
    /// The registered consumer.
    RegisterStreamConsumerOutput {
        required {
            /// The consumer.
            consumer: Consumer = "Consumer",
        }
        optional {}
    }
}

operation!(RegisterStreamConsumerInput => RegisterStreamConsumerOutput, "RegisterStreamConsumer", stream: |this| Some(this.stream_arn.as_str()), shard: |this| None, |this, limits| {
    tags("Tags", this.tags.as_ref())
});

shape! {
    /// Names a consumer by ARN, or by stream ARN and name (DescribeStreamConsumer).
    DescribeStreamConsumerInput {
        required {}
        optional {
            /// The stream's ARN (with `consumer_name`).
            stream_arn: StreamArn = "StreamARN",
            /// The consumer's name (with `stream_arn`).
            consumer_name: ConsumerName = "ConsumerName",
            /// The consumer's ARN.
            consumer_arn: ConsumerArn = "ConsumerARN",
        }
    }
}

shape! {
    /// The consumer's description.
    DescribeStreamConsumerOutput {
        required {
            /// The description.
            consumer_description: ConsumerDescription = "ConsumerDescription",
        }
        optional {}
    }
}

fn consumer_named(
    stream_arn: Option<&StreamArn>,
    consumer_name: Option<&ConsumerName>,
    consumer_arn: Option<&ConsumerArn>,
) -> Result<(), ValidationError> {
    if consumer_arn.is_some() || (stream_arn.is_some() && consumer_name.is_some()) {
        Ok(())
    } else {
        Err(ValidationError::new(
            ValidationErrorKind::Missing,
            "ConsumerARN",
            "either ConsumerARN, or StreamARN and ConsumerName, are required",
        ))
    }
}

operation!(DescribeStreamConsumerInput => DescribeStreamConsumerOutput, "DescribeStreamConsumer", stream: |this| this.stream_arn.as_ref().map(StreamArn::as_str).or(this.consumer_arn.as_ref().map(ConsumerArn::as_str)), shard: |this| None, |this, limits| {
    consumer_named(this.stream_arn.as_ref(), this.consumer_name.as_ref(), this.consumer_arn.as_ref())
});

shape! {
    /// Names a consumer to deregister, by ARN or by stream ARN and name.
    DeregisterStreamConsumerInput {
        required {}
        optional {
            /// The stream's ARN (with `consumer_name`).
            stream_arn: StreamArn = "StreamARN",
            /// The consumer's name (with `stream_arn`).
            consumer_name: ConsumerName = "ConsumerName",
            /// The consumer's ARN.
            consumer_arn: ConsumerArn = "ConsumerARN",
        }
    }
}

operation!(DeregisterStreamConsumerInput => Empty, "DeregisterStreamConsumer", stream: |this| this.stream_arn.as_ref().map(StreamArn::as_str).or(this.consumer_arn.as_ref().map(ConsumerArn::as_str)), shard: |this| None, |this, limits| {
    consumer_named(this.stream_arn.as_ref(), this.consumer_name.as_ref(), this.consumer_arn.as_ref())
});

shape! {
    /// Lists a stream's consumers, a page at a time.
    ListStreamConsumersInput {
        required {
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
        }
        optional {
            /// The token from the previous page.
            next_token: String = "NextToken",
            /// Page size, 1 to 10000.
            max_results: i32 = "MaxResults",
            /// Tells apart streams of the same name.
            stream_creation_timestamp: Timestamp = "StreamCreationTimestamp",
        }
    }
}

shape! {
    /// One page of consumers.
    ListStreamConsumersOutput {
        required {}
        optional {
            /// The consumers.
            consumers: Vec<Consumer> = "Consumers",
            /// The token for the next page.
            next_token: String = "NextToken",
        }
    }
}

operation!(ListStreamConsumersInput => ListStreamConsumersOutput, "ListStreamConsumers", stream: |this| Some(this.stream_arn.as_str()), shard: |this| None, |this, limits| {
    range("MaxResults", this.max_results.map(i64::from), 1, 10_000)
});

// ---------------------------------------------------------------------------------------------
// SubscribeToShard

shape! {
    /// Subscribes a consumer to a shard over HTTP/2; the response is an event stream
    /// (see [`crate::eventstream`]).
    SubscribeToShardInput {
        required {
            /// The consumer's ARN.
            consumer_arn: ConsumerArn = "ConsumerARN",
            /// The shard.
            shard_id: ShardId = "ShardId",
            /// Where to start.
            starting_position: StartingPosition = "StartingPosition",
        }
        optional {}
    }
}

shape! {
    /// The payload of a `SubscribeToShardEvent` event-stream message.
    SubscribeToShardEvent {
        required {
            /// The records, possibly none (events also serve as heartbeats).
            records: Vec<Record> = "Records",
            /// How far behind the tip of the shard the event is, in milliseconds.
            millis_behind_latest: i64 = "MillisBehindLatest",
        }
        optional {
            /// Where to resume with AFTER_SEQUENCE_NUMBER; absent on the shard's final event.
            continuation_sequence_number: SequenceNumber = "ContinuationSequenceNumber",
            /// The shard's children, on its final event.
            child_shards: Vec<ChildShard> = "ChildShards",
        }
    }
}

operation!(SubscribeToShardInput => SubscribeToShardEvent, "SubscribeToShard", stream: |this| Some(this.consumer_arn.as_str()), shard: |this| Some(this.shard_id.as_str()), |this, limits| {
    let start = &this.starting_position;
    position(
        &start.r#type,
        "StartingPosition.Type",
        start.sequence_number.as_ref(),
        "StartingPosition.SequenceNumber",
        start.timestamp.as_ref(),
        "StartingPosition.Timestamp",
    )
});

// ---------------------------------------------------------------------------------------------
// Resharding and stream settings

shape! {
    /// Splits a shard in two at a hash key.
    SplitShardInput {
        required {
            /// The shard to split.
            shard_to_split: ShardId = "ShardToSplit",
            /// The first hash key of the second child; strictly inside the shard's range.
            new_starting_hash_key: HashKey = "NewStartingHashKey",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(SplitShardInput => Empty, "SplitShard", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| Some(this.shard_to_split.as_str()), |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    if this.new_starting_hash_key == HashKey::MIN {
        return Err(ValidationError::new(
            ValidationErrorKind::OutOfRange,
            "NewStartingHashKey",
            "must lie strictly inside the shard's range, so it cannot be 0",
        ));
    }
    Ok(())
});

shape! {
    /// Merges two adjacent shards.
    MergeShardsInput {
        required {
            /// The first shard.
            shard_to_merge: ShardId = "ShardToMerge",
            /// The shard whose range adjoins the first one's.
            adjacent_shard_to_merge: ShardId = "AdjacentShardToMerge",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(MergeShardsInput => Empty, "MergeShards", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| Some(this.shard_to_merge.as_str()), |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    if this.shard_to_merge == this.adjacent_shard_to_merge {
        return Err(ValidationError::new(
            ValidationErrorKind::Conflict,
            "AdjacentShardToMerge",
            "must differ from ShardToMerge",
        ));
    }
    Ok(())
});

shape! {
    /// Scales a stream to a number of shards.
    UpdateShardCountInput {
        required {
            /// The number of open shards wanted.
            target_shard_count: i32 = "TargetShardCount",
            /// How to scale.
            scaling_type: ScalingType = "ScalingType",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

shape! {
    /// The scaling that UpdateShardCount started.
    UpdateShardCountOutput {
        required {}
        optional {
            /// The stream's name.
            stream_name: StreamName = "StreamName",
            /// The shard count before.
            current_shard_count: i32 = "CurrentShardCount",
            /// The shard count asked for.
            target_shard_count: i32 = "TargetShardCount",
            /// The stream's ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(UpdateShardCountInput => UpdateShardCountOutput, "UpdateShardCount", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    known("ScalingType", this.scaling_type.is_known(), &this.scaling_type.as_str())?;
    range("TargetShardCount", Some(i64::from(this.target_shard_count)), 1, 100_000)
});

shape! {
    /// Lengthens the retention period.
    IncreaseStreamRetentionPeriodInput {
        required {
            /// The new retention, 24 to 8760 hours.
            retention_period_hours: i32 = "RetentionPeriodHours",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(IncreaseStreamRetentionPeriodInput => Empty, "IncreaseStreamRetentionPeriod", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    range("RetentionPeriodHours", Some(i64::from(this.retention_period_hours)), 24, 8760)
});

shape! {
    /// Shortens the retention period.
    DecreaseStreamRetentionPeriodInput {
        required {
            /// The new retention, 24 to 8760 hours.
            retention_period_hours: i32 = "RetentionPeriodHours",
        }
        optional {
            /// The stream, by name.
            stream_name: StreamName = "StreamName",
            /// The stream, by ARN.
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(DecreaseStreamRetentionPeriodInput => Empty, "DecreaseStreamRetentionPeriod", stream: |this| this.stream_name.as_ref().map(StreamName::as_str).or(this.stream_arn.as_ref().map(StreamArn::as_str)), shard: |this| None, |this, limits| {
    stream_given(this.stream_name.as_ref(), this.stream_arn.as_ref())?;
    range("RetentionPeriodHours", Some(i64::from(this.retention_period_hours)), 24, 8760)
});

shape! {
    /// Changes the largest record a stream accepts (StreamARN only: the operation has no
    /// StreamName member).
    UpdateMaxRecordSizeInput {
        required {
            /// The new limit, 1024 to 10240 KiB.
            max_record_size_in_kib: i32 = "MaxRecordSizeInKiB",
        }
        optional {
            /// The stream's ARN (required by validation).
            stream_arn: StreamArn = "StreamARN",
        }
    }
}

operation!(UpdateMaxRecordSizeInput => Empty, "UpdateMaxRecordSize", stream: |this| this.stream_arn.as_ref().map(StreamArn::as_str), shard: |this| None, |this, limits| {
    required("StreamARN", this.stream_arn.as_ref())?;
    range("MaxRecordSizeInKiB", Some(i64::from(this.max_record_size_in_kib)), 1024, 10_240)
});
