//! Newtypes that carry the service's invariants: names, ARNs, ids, keys, sequence numbers and
//! timestamps. A value of one of these types is valid by construction; the wire decoders build
//! them through the same checked constructors.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use md5::{Digest, Md5};

use crate::error::{ValidationError, ValidationErrorKind};

/// How a string newtype keeps its text: a `String` of its own, or a [`ByteString`] that may
/// share the buffer of the response it was decoded from (no allocation per record).
pub(crate) trait TextStorage: Sized {
    fn from_string(value: String) -> Self;
    fn text(&self) -> &str;
    fn into_string(self) -> String;
}

impl TextStorage for String {
    fn from_string(value: String) -> Self {
        value
    }
    fn text(&self) -> &str {
        self
    }
    fn into_string(self) -> String {
        self
    }
}

impl TextStorage for ByteString {
    fn from_string(value: String) -> Self {
        Self::from(value)
    }
    fn text(&self) -> &str {
        self
    }
    fn into_string(self) -> String {
        String::from(&*self)
    }
}

/// Declares a string newtype, kept in `$storage`, whose constructor runs `$check`.
macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:path) => {
        checked_string!($(#[$meta])* $name, $what, $check, String);
    };
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:path, $storage:ty) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name($storage);

        impl $name {
            #[doc = concat!("Checks `value` and wraps it as a ", $what, ".")]
            ///
            /// # Errors
            ///
            /// A [`ValidationError`] naming the broken constraint.
            pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                $check(&value).map_err(|e| e.within($what))?;
                Ok(Self(<$storage as TextStorage>::from_string(value)))
            }

            /// Wraps a value already checked by the same rule.
            #[allow(dead_code)]
            pub(crate) fn from_checked(value: String) -> Self {
                Self(<$storage as TextStorage>::from_string(value))
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                self.0.text()
            }

            /// Unwraps the string.
            pub fn into_string(self) -> String {
                self.0.into_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.text()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.text())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.0.text(), f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ValidationError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.into_string()
            }
        }
    };
}

/// Declares what a [`ByteString`]-backed newtype adds: construction from checked shared text,
/// and the shared bytes themselves.
macro_rules! shared_string {
    ($name:ident) => {
        impl $name {
            /// Wraps shared text already checked by the same rule.
            pub(crate) fn from_checked_shared(value: ByteString) -> Self {
                Self(value)
            }

            /// The shared text.
            pub(crate) fn into_shared(self) -> ByteString {
                self.0
            }

            /// The value as shared bytes (no copy).
            pub fn into_bytes(self) -> Bytes {
                self.0.into_bytes()
            }

            /// A copy in a buffer of its own. A value decoded from a response shares that
            /// response's buffer and keeps all of it alive; keep a detached copy instead when
            /// the value outlives the records (a resume position, a checkpoint).
            #[must_use]
            pub fn detach(&self) -> Self {
                Self(ByteString::from(String::from(&*self.0)))
            }
        }
    };
}

fn length_error(min: usize, max: usize, actual: usize, unit: &str) -> ValidationError {
    ValidationError::new(
        ValidationErrorKind::Length,
        "",
        format!("length must be {min}..={max} {unit}, got {actual}"),
    )
}

fn check_len(value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let len = value.chars().count();
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(length_error(min, max, len, "characters"))
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `[a-zA-Z0-9_.-]+`, 1..=128: stream names, consumer names and shard ids.
fn check_name(value: &str) -> Result<(), ValidationError> {
    check_len(value, 1, 128)?;
    match value.bytes().position(|b| !is_name_byte(b)) {
        None => Ok(()),
        Some(i) => Err(ValidationError::new(
            ValidationErrorKind::Pattern,
            "",
            format!("character {i} is not one of [a-zA-Z0-9_.-]"),
        )),
    }
}

fn pattern_error(detail: &str) -> ValidationError {
    ValidationError::new(ValidationErrorKind::Pattern, "", detail.to_owned())
}

/// The parts of `arn:{partition}:kinesis:{region}:{account}:{resource}`.
struct ArnParts<'a> {
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn split_arn(value: &str) -> Result<ArnParts<'_>, ValidationError> {
    check_len(value, 1, 2048)?;
    let mut parts = value.splitn(6, ':');
    let (
        Some("arn"),
        Some(partition),
        Some("kinesis"),
        Some(region),
        Some(account),
        Some(resource),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return Err(pattern_error(
            "must look like arn:aws:kinesis:{region}:{account}:...",
        ));
    };
    if !partition.starts_with("aws") {
        return Err(pattern_error("the partition must start with `aws`"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(pattern_error("the account id must be 12 digits"));
    }
    Ok(ArnParts {
        region,
        account,
        resource,
    })
}

fn check_stream_arn(value: &str) -> Result<(), ValidationError> {
    let parts = split_arn(value)?;
    match parts.resource.strip_prefix("stream/") {
        Some(name) if !name.is_empty() && !name.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(pattern_error("the resource must be stream/{name}")),
    }
}

/// Splits the resource of a consumer ARN into (stream name, consumer name, creation seconds).
fn split_consumer_resource(resource: &str) -> Option<(&str, &str, &str)> {
    let (path, created) = resource.rsplit_once(':')?;
    let (stream_path, consumer) = path.rsplit_once("/consumer/")?;
    // The name follows the last `stream/` (the model allows a prefix before it).
    let stream = stream_path
        .rsplit_once("stream/")
        .map_or("", |(_, name)| name);
    Some((stream, consumer, created))
}

fn check_consumer_arn(value: &str) -> Result<(), ValidationError> {
    let parts = split_arn(value)?;
    let Some((stream, consumer, created)) = split_consumer_resource(parts.resource) else {
        return Err(pattern_error(
            "the resource must be stream/{stream}/consumer/{consumer}:{creation seconds}",
        ));
    };
    let ok = !stream.is_empty()
        && stream.bytes().all(is_name_byte)
        && !consumer.is_empty()
        && consumer.bytes().all(is_name_byte)
        && !created.is_empty()
        && created.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(pattern_error(
            "the resource must be stream/{stream}/consumer/{consumer}:{creation seconds}",
        ))
    }
}

pub(crate) fn check_partition_key(value: &str) -> Result<(), ValidationError> {
    // The service documents "maximum length of 256 characters"; Java counts UTF-16 units.
    // A UTF-16 unit takes at least one UTF-8 byte, so short keys need no counting.
    if (1..=256).contains(&value.len()) {
        return Ok(());
    }
    let units = value.encode_utf16().count();
    if (1..=256).contains(&units) {
        Ok(())
    } else {
        Err(length_error(1, 256, units, "UTF-16 units"))
    }
}

fn check_shard_iterator(value: &str) -> Result<(), ValidationError> {
    check_len(value, 1, 512)
}

/// Whether every byte is `0..=9`, eight bytes at a time.
fn all_ascii_digits(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let mut chunks = bytes.chunks_exact(8);
    // A byte is a digit when its high nibble is 3 and adding 6 keeps it there (0x30..=0x39).
    let words_ok = chunks.by_ref().all(|chunk| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        x & HIGH == ZEROS && x.wrapping_add(SIXES) & HIGH == ZEROS
    });
    words_ok && chunks.remainder().iter().all(u8::is_ascii_digit)
}

pub(crate) fn check_sequence_number(value: &str) -> Result<(), ValidationError> {
    // From the model: `0|([1-9]\d{0,128})`. Branch-free, so the check vectorises.
    let digits_ok = !value.is_empty() && all_ascii_digits(value.as_bytes());
    if !digits_ok || (value.len() > 1 && value.starts_with('0')) {
        return Err(pattern_error(
            "must be a decimal number without leading zeros",
        ));
    }
    if value.len() > 129 {
        return Err(length_error(1, 129, value.len(), "digits"));
    }
    Ok(())
}

checked_string!(
    /// A stream name: 1 to 128 characters of `[a-zA-Z0-9_.-]`.
    #[derive(PartialOrd, Ord)]
    StreamName,
    "StreamName",
    check_name
);

checked_string!(
    /// A consumer name: 1 to 128 characters of `[a-zA-Z0-9_.-]`.
    #[derive(PartialOrd, Ord)]
    ConsumerName,
    "ConsumerName",
    check_name
);

checked_string!(
    /// A shard id such as `shardId-000000000000`: 1 to 128 characters of `[a-zA-Z0-9_.-]`.
    #[derive(PartialOrd, Ord)]
    ShardId,
    "ShardId",
    check_name
);

checked_string!(
    /// A stream ARN, `arn:{partition}:kinesis:{region}:{account}:stream/{name}`.
    #[derive(PartialOrd, Ord)]
    StreamArn,
    "StreamARN",
    check_stream_arn
);

checked_string!(
    /// A consumer ARN, `{stream ARN}/consumer/{name}:{creation epoch seconds}`.
    #[derive(PartialOrd, Ord)]
    ConsumerArn,
    "ConsumerARN",
    check_consumer_arn
);

checked_string!(
    /// A partition key: 1 to 256 characters (counted in UTF-16 units, as the service does).
    ///
    /// The MD5 of its UTF-8 bytes, read as a big-endian `u128`, chooses the shard: see
    /// [`PartitionKey::hash_key`].
    #[derive(PartialOrd, Ord)]
    PartitionKey,
    "PartitionKey",
    check_partition_key,
    ByteString
);
shared_string!(PartitionKey);

checked_string!(
    /// An opaque shard iterator, 1 to 512 characters. It expires five minutes after it is issued.
    #[derive(PartialOrd, Ord)]
    ShardIterator,
    "ShardIterator",
    check_shard_iterator
);

impl StreamArn {
    /// The region part of the ARN.
    pub fn region(&self) -> &str {
        split_arn(&self.0).map_or("", |p| p.region)
    }

    /// The 12-digit account id.
    pub fn account(&self) -> &str {
        split_arn(&self.0).map_or("", |p| p.account)
    }

    /// The stream name at the end of the ARN.
    pub fn stream_name(&self) -> &str {
        split_arn(&self.0).map_or("", |p| p.resource.strip_prefix("stream/").unwrap_or(""))
    }
}

impl ConsumerArn {
    /// The ARN of the stream the consumer belongs to.
    pub fn stream_arn(&self) -> StreamArn {
        let end = self.0.rfind("/consumer/").unwrap_or(self.0.len());
        StreamArn(self.0[..end].to_owned())
    }

    /// The consumer's name.
    pub fn consumer_name(&self) -> &str {
        split_arn(&self.0)
            .ok()
            .and_then(|p| split_consumer_resource(p.resource))
            .map_or("", |(_, consumer, _)| consumer)
    }

    /// When the consumer was registered, in seconds since the epoch (the ARN's last part).
    pub fn creation_epoch_seconds(&self) -> u64 {
        split_arn(&self.0)
            .ok()
            .and_then(|p| split_consumer_resource(p.resource))
            .and_then(|(_, _, created)| created.parse().ok())
            .unwrap_or(0)
    }
}

impl PartitionKey {
    /// The 128-bit hash key this partition key maps to: the MD5 of its UTF-8 bytes, big-endian.
    pub fn hash_key(&self) -> HashKey {
        HashKey::from_partition_key(self.as_str())
    }
}

checked_string!(
    /// A sequence number, kept exactly as the service sent it.
    ///
    /// Sequence numbers are decimal strings of up to 129 digits; they order as unsigned integers
    /// (within one shard), which is what [`Ord`] implements.
    SequenceNumber,
    "SequenceNumber",
    check_sequence_number,
    ByteString
);
shared_string!(SequenceNumber);

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        // Canonical decimals without leading zeros: the longer one is larger.
        let (a, b) = (self.as_str(), other.as_str());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A position in the 128-bit hash key space (`0..=2^128-1`), sent as a decimal string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashKey(pub u128);

impl HashKey {
    /// The smallest hash key.
    pub const MIN: Self = Self(0);
    /// The largest hash key, `2^128 - 1`.
    pub const MAX: Self = Self(u128::MAX);

    /// The hash key of a partition key: the MD5 of its UTF-8 bytes read as a big-endian `u128`.
    pub fn from_partition_key(partition_key: &str) -> Self {
        let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
        Self(u128::from_be_bytes(digest))
    }

    /// Parses the wire form, `0|[1-9][0-9]{0,38}`, at most `2^128 - 1`.
    ///
    /// # Errors
    ///
    /// A [`ValidationError`] naming `HashKey` when the text is not such a number.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let digits_ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok || (text.len() > 1 && text.starts_with('0')) {
            return Err(ValidationError::new(
                ValidationErrorKind::Pattern,
                "HashKey",
                "must be a decimal number without leading zeros",
            ));
        }
        text.parse::<u128>().map(Self).map_err(|_| {
            ValidationError::new(
                ValidationErrorKind::OutOfRange,
                "HashKey",
                "must be in the range [0, 2^128-1]",
            )
        })
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for HashKey {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A point in time with millisecond precision, as milliseconds since the Unix epoch.
///
/// JSON carries it as fractional epoch seconds, CBOR as epoch milliseconds (tag 1); both keep
/// millisecond precision exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp `millis` milliseconds after the epoch (negative: before).
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The timestamp as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to whole milliseconds (saturating far outside the `i64` range).
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                Self(i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m))
            }
        }
    }
}

/// Declares a wire enum that keeps unknown values instead of failing on them.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        ///
        /// Values this version does not know decode as `Unknown`, keeping the text; requests
        /// carrying one are refused by validation.
        #[non_exhaustive]
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know, as sent.
            Unknown(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(s) => s,
                }
            }

            /// Whether this is a value the service defines (not `Unknown`).
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }

            #[allow(dead_code)]
            pub(crate) const KNOWN: &'static [Self] = &[$(Self::$variant,)+];
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Unknown(s),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The state of a stream.
    StreamStatus {
        /// Being created.
        Creating = "CREATING",
        /// Being deleted.
        Deleting = "DELETING",
        /// Readable and writable.
        Active = "ACTIVE",
        /// Being resharded or reconfigured; still readable and writable.
        Updating = "UPDATING",
    }
);

wire_enum!(
    /// The state of a registered enhanced fan-out consumer.
    ConsumerStatus {
        /// Being registered.
        Creating = "CREATING",
        /// Being deregistered.
        Deleting = "DELETING",
        /// Ready to subscribe.
        Active = "ACTIVE",
    }
);

wire_enum!(
    /// Server-side encryption of records.
    EncryptionType {
        /// No encryption.
        None = "NONE",
        /// Encrypted with a KMS key.
        Kms = "KMS",
    }
);

wire_enum!(
    /// Capacity mode of a stream.
    StreamMode {
        /// Shards are provisioned by the owner.
        Provisioned = "PROVISIONED",
        /// The service scales shards on demand.
        OnDemand = "ON_DEMAND",
    }
);

wire_enum!(
    /// Where a shard iterator or a subscription starts.
    ShardIteratorType {
        /// At a given sequence number.
        AtSequenceNumber = "AT_SEQUENCE_NUMBER",
        /// Just after a given sequence number.
        AfterSequenceNumber = "AFTER_SEQUENCE_NUMBER",
        /// At the oldest record still retained.
        TrimHorizon = "TRIM_HORIZON",
        /// After the newest record.
        Latest = "LATEST",
        /// At the first record at or after a time.
        AtTimestamp = "AT_TIMESTAMP",
    }
);

wire_enum!(
    /// How UpdateShardCount scales.
    ScalingType {
        /// Split or merge evenly.
        UniformScaling = "UNIFORM_SCALING",
    }
);

wire_enum!(
    /// Which shards ListShards returns.
    ShardFilterType {
        /// Shards after a shard id (needs `ShardId`).
        AfterShardId = "AFTER_SHARD_ID",
        /// Shards open at the trim horizon.
        AtTrimHorizon = "AT_TRIM_HORIZON",
        /// All shards within the retention period (the default).
        FromTrimHorizon = "FROM_TRIM_HORIZON",
        /// Open shards only.
        AtLatest = "AT_LATEST",
        /// Shards open at a time (needs `Timestamp`).
        AtTimestamp = "AT_TIMESTAMP",
        /// Shards open at or after a time (needs `Timestamp`).
        FromTimestamp = "FROM_TIMESTAMP",
    }
);

wire_enum!(
    /// A shard-level CloudWatch metric of enhanced monitoring.
    MetricsName {
        /// Bytes put.
        IncomingBytes = "IncomingBytes",
        /// Records put.
        IncomingRecords = "IncomingRecords",
        /// Bytes read.
        OutgoingBytes = "OutgoingBytes",
        /// Records read.
        OutgoingRecords = "OutgoingRecords",
        /// Throttled writes.
        WriteProvisionedThroughputExceeded = "WriteProvisionedThroughputExceeded",
        /// Throttled reads.
        ReadProvisionedThroughputExceeded = "ReadProvisionedThroughputExceeded",
        /// Age of the last record read.
        IteratorAgeMilliseconds = "IteratorAgeMilliseconds",
        /// Every metric.
        All = "ALL",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(StreamName::new("a-b_c.9").is_ok());
        assert_eq!(
            StreamName::new("").unwrap_err().kind(),
            ValidationErrorKind::Length
        );
        assert_eq!(
            StreamName::new("x".repeat(129)).unwrap_err().kind(),
            ValidationErrorKind::Length
        );
        let err = StreamName::new("bad name").unwrap_err();
        assert_eq!(err.kind(), ValidationErrorKind::Pattern);
        assert_eq!(err.field(), "StreamName");
    }

    #[test]
    fn arns_are_parsed() {
        let arn = StreamArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/orders").unwrap();
        assert_eq!(arn.region(), "us-east-1");
        assert_eq!(arn.account(), "123456789012");
        assert_eq!(arn.stream_name(), "orders");
        assert!(StreamArn::new("arn:aws:kinesis:us-east-1:12345:stream/orders").is_err());
        assert!(StreamArn::new("arn:aws:s3:us-east-1:123456789012:stream/orders").is_err());
        assert!(StreamArn::new("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/x").is_ok());

        let consumer = ConsumerArn::new(
            "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app:1700000000",
        )
        .unwrap();
        assert_eq!(consumer.stream_arn(), arn);
        assert_eq!(consumer.consumer_name(), "app");
        assert_eq!(consumer.creation_epoch_seconds(), 1_700_000_000);
        assert!(
            ConsumerArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app")
                .is_err()
        );
    }

    #[test]
    fn partition_keys_count_utf16_units() {
        assert!(PartitionKey::new("k".repeat(256)).is_ok());
        assert!(PartitionKey::new("k".repeat(257)).is_err());
        assert!(PartitionKey::new("").is_err());
        // U+1F600 is two UTF-16 units: 128 of them fill the limit.
        assert!(PartitionKey::new("\u{1F600}".repeat(128)).is_ok());
        assert!(PartitionKey::new("\u{1F600}".repeat(129)).is_err());
    }

    #[test]
    fn hash_key_of_partition_key_is_big_endian_md5() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
        assert_eq!(
            PartitionKey::new("a").unwrap().hash_key(),
            HashKey(0x0cc1_75b9_c0f1_b6a8_31c3_99e2_6977_2661)
        );
    }

    #[test]
    fn hash_keys_parse_the_full_range() {
        assert_eq!(HashKey::parse("0").unwrap(), HashKey::MIN);
        assert_eq!(
            HashKey::parse("340282366920938463463374607431768211455").unwrap(),
            HashKey::MAX
        );
        assert_eq!(
            HashKey::parse("340282366920938463463374607431768211456")
                .unwrap_err()
                .kind(),
            ValidationErrorKind::OutOfRange
        );
        assert!(HashKey::parse("01").is_err());
        assert!(HashKey::parse("-1").is_err());
        assert!(HashKey::parse("").is_err());
    }

    #[test]
    fn sequence_numbers_order_as_unsigned_integers() {
        let small = SequenceNumber::new("9").unwrap();
        let big = SequenceNumber::new("10").unwrap();
        assert!(small < big);
        let a = SequenceNumber::new("49590338271490256608559692538361571095921575989136588898")
            .unwrap();
        let b = SequenceNumber::new("49590338271490256608559692540925702759324208523137515618")
            .unwrap();
        assert!(a < b);
        assert!(SequenceNumber::new("007").is_err());
        assert!(SequenceNumber::new("1".repeat(130)).is_err());
        assert!(SequenceNumber::new("12a").is_err());
    }

    #[test]
    fn digit_check_covers_every_byte() {
        for len in 0..40 {
            let digits = "7".repeat(len);
            assert!(all_ascii_digits(digits.as_bytes()));
            for at in 0..len {
                for bad in [b'/', b':', b'0' + 0x80, 0x36 + 0x10, 0] {
                    let mut bytes = digits.clone().into_bytes();
                    bytes[at] = bad;
                    assert!(!all_ascii_digits(&bytes), "{len} {at} {bad}");
                }
            }
        }
    }

    #[test]
    fn timestamps_convert_to_system_time() {
        let t = Timestamp::from_millis(1_718_000_000_123);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        let before = Timestamp::from_millis(-1500);
        assert_eq!(Timestamp::from(before.to_system_time()), before);
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        assert_eq!(StreamStatus::from("ACTIVE"), StreamStatus::Active);
        let odd = StreamStatus::from("FROZEN");
        assert!(!odd.is_known());
        assert_eq!(odd.as_str(), "FROZEN");
    }
}
