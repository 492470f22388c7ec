//! Fuzz harness bodies (built only with `--cfg fuzzing`); the targets in `fuzz/` call these.
//!
//! Each harness asserts properties, not just absence of panics: chunked and whole decoding
//! agree, and whatever decodes re-encodes to something that decodes to the same value.

use bytes::Bytes;

use crate::Protocol;
use crate::eventstream::{Decoded, Message, MessageDecoder, SubscribeToShardDecoder};
use crate::model::*;
use crate::service_error::ServiceError;

fn decode_stream(chunks: impl Iterator<Item = Bytes>) -> (Vec<Message>, bool) {
    let mut decoder = MessageDecoder::with_max_frame_len(1 << 20);
    let mut messages = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        loop {
            match decoder.decode() {
                Ok(Decoded::Message(m)) => messages.push(m),
                Ok(Decoded::Incomplete) => break,
                Err(_) => return (messages, true),
            }
        }
    }
    let failed = decoder.finish().is_err();
    (messages, failed)
}

/// Raw bytes as an event stream: whole, and split at points taken from the input itself.
pub fn raw_frames(data: &[u8]) {
    let whole = decode_stream(std::iter::once(Bytes::copy_from_slice(data)));
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let input = Bytes::copy_from_slice(data);
    let chunked = decode_stream(
        (0..data.len())
            .step_by(step)
            .map(|at| input.slice(at..(at + step).min(data.len()))),
    );
    assert_eq!(whole, chunked, "chunking changed the result");
    for message in &whole.0 {
        let encoded = message.to_bytes().expect("decoded messages re-encode");
        let again = decode_stream(std::iter::once(encoded));
        assert_eq!(again, (vec![message.clone()], false));
    }
}

/// Bytes made into a frame with correct lengths and CRCs, so the header parser is reached.
pub fn frames_with_fixed_crcs(data: &[u8]) {
    if data.len() < 16 || data.len() > (1 << 20) {
        return;
    }
    let mut frame = data.to_vec();
    let total = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    frame[0..4].copy_from_slice(&total.to_be_bytes());
    let prelude_crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
    let end = frame.len() - 4;
    let message_crc = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&message_crc.to_be_bytes());
    let (messages, failed) = decode_stream(std::iter::once(Bytes::from(frame.clone())));
    if !failed {
        assert_eq!(messages.len(), 1);
        assert_eq!(&messages[0].to_bytes().expect("re-encodes")[..], &frame[..]);
        let _ =
            crate::eventstream::SubscribeToShardItem::from_message(&messages[0], Protocol::Json);
    }
}

fn shape_round_trip<T: Shape + PartialEq + std::fmt::Debug>(data: &Bytes, protocol: Protocol) {
    if let Ok(value) = T::decode_body(data.clone(), protocol) {
        for target in [Protocol::Json, Protocol::Cbor] {
            let encoded = value.encode_body(target);
            let again =
                T::decode_body(Bytes::from(encoded), target).expect("re-encoded shapes decode");
            assert_eq!(again, value);
        }
    }
}

/// The record fast paths (owned and lent) and the general decoder agree: same records, or the
/// same error.
fn visit_agrees(body: &Bytes, protocol: Protocol) {
    let owned = general_only(|| GetRecordsOutput::decode_body(body.clone(), protocol));
    match (
        &owned,
        GetRecordsOutput::decode_body(body.clone(), protocol),
    ) {
        (Ok(general), Ok(fast)) => assert_eq!(general, &fast),
        (Err(a), Err(b)) => assert_eq!((a.kind(), a.offset()), (b.kind(), b.offset())),
        (general, fast) => panic!("general {general:?}, fast {fast:?}"),
    }
    let mut lent = Vec::new();
    let visited =
        GetRecordsOutput::visit_records(body.clone(), protocol, |r| lent.push(r.to_record()));
    match (owned, visited) {
        (Ok(owned), Ok(_)) => assert_eq!(owned.records, lent),
        (Err(a), Err(b)) => assert_eq!((a.kind(), a.offset()), (b.kind(), b.offset())),
        (owned, visited) => panic!("decode {owned:?}, visit {visited:?}"),
    }
}

fn every_output(data: &[u8], protocol: Protocol) {
    let body = Bytes::copy_from_slice(data);
    visit_agrees(&body, protocol);
    shape_round_trip::<GetRecordsOutput>(&body, protocol);
    shape_round_trip::<PutRecordsOutput>(&body, protocol);
    shape_round_trip::<PutRecordOutput>(&body, protocol);
    shape_round_trip::<ListShardsOutput>(&body, protocol);
    shape_round_trip::<DescribeStreamOutput>(&body, protocol);
    shape_round_trip::<DescribeStreamSummaryOutput>(&body, protocol);
    shape_round_trip::<ListStreamsOutput>(&body, protocol);
    shape_round_trip::<RegisterStreamConsumerOutput>(&body, protocol);
    shape_round_trip::<DescribeStreamConsumerOutput>(&body, protocol);
    shape_round_trip::<ListStreamConsumersOutput>(&body, protocol);
    shape_round_trip::<SubscribeToShardEvent>(&body, protocol);
    shape_round_trip::<UpdateShardCountOutput>(&body, protocol);
    shape_round_trip::<GetShardIteratorOutput>(&body, protocol);
    shape_round_trip::<PutRecordsInput>(&body, protocol);
    shape_round_trip::<Empty>(&body, protocol);
    let _ = ServiceError::from_response(
        http::StatusCode::BAD_REQUEST,
        &http::HeaderMap::new(),
        &body,
        protocol,
    );
}

/// Bytes as a JSON response body of every output shape, and as an error body.
pub fn json_responses(data: &[u8]) {
    every_output(data, Protocol::Json);
}

/// Bytes as a CBOR response body of every output shape, and as an error body.
pub fn cbor_responses(data: &[u8]) {
    every_output(data, Protocol::Cbor);
}

/// Bytes as a SubscribeToShard response body.
pub fn subscribe_to_shard(data: &[u8]) {
    use crate::eventstream::{SubscribeToShardItem, SubscribeToShardVisit};
    let body = Bytes::copy_from_slice(data);
    for protocol in [Protocol::Json, Protocol::Cbor] {
        // Collected by the general decoder and lent by the fast path, the same records come
        // out, up to the same point.
        let mut owned = SubscribeToShardDecoder::new(protocol);
        owned.feed(body.clone());
        let mut collected = Vec::new();
        let owned_end = general_only(|| {
            loop {
                match owned.next_item() {
                    Ok(Some(SubscribeToShardItem::Event(event))) => collected.extend(
                        event
                            .records
                            .into_iter()
                            .map(|r| (r.sequence_number.as_str().to_owned(), r.data)),
                    ),
                    Ok(Some(_)) => {}
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            }
        });
        let mut lending = SubscribeToShardDecoder::new(protocol);
        lending.feed(body.clone());
        let mut lent = Vec::new();
        let lent_end = loop {
            let mut page = Vec::new();
            match lending.next_visit(|r| page.push((r.sequence_number.to_owned(), r.data.clone())))
            {
                Ok(Some(SubscribeToShardVisit::Event(_))) => lent.extend(page),
                Ok(Some(_)) => {}
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        assert_eq!(owned_end, lent_end);
        assert_eq!(collected, lent);
        assert_eq!(owned.skipped(), lending.skipped());
    }
}
