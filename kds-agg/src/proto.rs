//! The `AggregatedRecord` protobuf (proto2) as prost messages: the oracle that `wire` is
//! tested against.
//!
//! Every member is optional here, whatever the schema says, so that a missing proto2 `required`
//! member can be told apart from a zero and treated as the KCL treats it: a record that is not
//! an aggregate. Key tables are bytes, not strings, so that invalid UTF-8 in a key cannot fail the
//! whole parse; blobs decoded from [`bytes::Bytes`] are slices of it, not copies.

use bytes::Bytes;

/// `message AggregatedRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AggregatedRecord {
    /// `repeated string partition_key_table = 1`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub(crate) partition_key_table: Vec<Bytes>,
    /// `repeated string explicit_hash_key_table = 2`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub(crate) explicit_hash_key_table: Vec<Bytes>,
    /// `repeated Record records = 3`.
    #[prost(message, repeated, tag = "3")]
    pub(crate) records: Vec<Record>,
}

/// `message Record`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Record {
    /// `required uint64 partition_key_index = 1`.
    #[prost(uint64, optional, tag = "1")]
    pub(crate) partition_key_index: Option<u64>,
    /// `optional uint64 explicit_hash_key_index = 2`.
    #[prost(uint64, optional, tag = "2")]
    pub(crate) explicit_hash_key_index: Option<u64>,
    /// `required bytes data = 3`.
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub(crate) data: Option<Bytes>,
    /// `repeated Tag tags = 4`.
    #[prost(message, repeated, tag = "4")]
    pub(crate) tags: Vec<ProtoTag>,
}

/// `message Tag`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoTag {
    /// `required string key = 1`.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) key: Option<Bytes>,
    /// `optional string value = 2`.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub(crate) value: Option<Bytes>,
}
