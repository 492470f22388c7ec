//! The anchor decoders: how a serde-based client decodes the same bytes
//! (`aws-smithy-eventstream` frames, serde_json, base64), measured beside ours in the same run.

use std::hint::black_box;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, Bytes};
use serde::Deserialize;

/// A record as a serde client reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
pub struct SerdeRecord<'a> {
    sequence_number: String,
    approximate_arrival_timestamp: f64,
    #[serde(borrow)]
    data: &'a str,
    partition_key: String,
    encryption_type: Option<String>,
}

/// A GetRecords answer as a serde client reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
pub struct SerdeGetRecords<'a> {
    #[serde(borrow)]
    /// The records.
    pub records: Vec<SerdeRecord<'a>>,
    next_shard_iterator: Option<String>,
    millis_behind_latest: Option<i64>,
}

/// A SubscribeToShard event as a serde client reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
pub struct SerdeEvent<'a> {
    #[serde(borrow)]
    /// The records.
    pub records: Vec<SerdeRecord<'a>>,
    continuation_sequence_number: Option<String>,
    millis_behind_latest: i64,
}

/// Decodes each record's data as the baseline client would, keeping the bytes alive; the bytes
/// of data.
pub fn decode_serde_records(records: &[SerdeRecord<'_>]) -> usize {
    records
        .iter()
        .map(|r| black_box(STANDARD.decode(r.data).expect("valid base64")).len())
        .sum()
}

/// The messages of an event-stream body, by `aws-smithy-eventstream`.
pub fn smithy_frames(body: &Bytes) -> Vec<aws_smithy_types::event_stream::Message> {
    let mut decoder = MessageFrameDecoder::new();
    let mut buf = body.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        match decoder.decode_frame(&mut buf).expect("valid frames") {
            DecodedFrame::Complete(m) => out.push(m),
            DecodedFrame::Incomplete => break,
        }
    }
    out
}

/// A JSON SubscribeToShard body decoded by the anchor; the records.
pub fn smithy_serde_events(body: &Bytes) -> usize {
    let mut n = 0;
    for message in smithy_frames(body) {
        let event: SerdeEvent<'_> = serde_json::from_slice(message.payload()).expect("parses");
        black_box(decode_serde_records(&event.records));
        n += event.records.len();
    }
    n
}
