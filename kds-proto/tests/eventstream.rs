//! Event-stream framing: chunking independence, and agreement with `aws-smithy-eventstream`
//! (the decoder of the AWS SDK for Rust) on random valid and corrupted frames.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream::{
    Header as SmithyHeader, HeaderValue as SmithyValue, Message as SmithyMessage,
};
use bytes::Bytes;
use kds_proto::DecodeErrorKind;
use kds_proto::eventstream::{Decoded, HeaderValue, Message, MessageDecoder};
use proptest::prelude::*;

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|v| HeaderValue::ByteArray(v.into())),
        "\\PC{0,24}".prop_map(|s| HeaderValue::String(s.into())),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<u128>().prop_map(HeaderValue::Uuid),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec(("[:a-z-]{1,20}", header_value()), 0..6),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(headers, payload)| {
            headers
                .into_iter()
                .fold(Message::new(payload), |m, (name, value)| {
                    m.with_header(name, value)
                })
        })
}

fn decode_chunks(stream: &Bytes, cuts: &[usize]) -> Result<Vec<Message>, kds_proto::DecodeError> {
    let mut decoder = MessageDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        let end = end.clamp(start, stream.len());
        decoder.feed(stream.slice(start..end));
        start = end;
        while let Decoded::Message(m) = decoder.decode()? {
            out.push(m);
        }
    }
    decoder.finish()?;
    Ok(out)
}

fn encode_all(messages: &[Message]) -> Bytes {
    let mut out = Vec::new();
    for m in messages {
        m.encode(&mut out).unwrap();
    }
    Bytes::from(out)
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_messages(
        messages in proptest::collection::vec(message(), 1..5),
        mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = encode_all(&messages);
        let mut cuts: Vec<usize> = cuts.drain(..).map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_chunks(&stream, &cuts).unwrap(), messages);
    }
}

#[test]
fn one_byte_pieces_up_to_whole() {
    let messages = vec![
        Message::new(&b"first"[..])
            .with_header(":message-type", HeaderValue::String("event".into())),
        Message::new(vec![9u8; 1000]).with_header("uuid", HeaderValue::Uuid(42)),
        Message::new(Bytes::new()),
    ];
    let stream = encode_all(&messages);
    for piece in 1..=stream.len() {
        let cuts: Vec<usize> = (piece..stream.len()).step_by(piece).collect();
        assert_eq!(
            decode_chunks(&stream, &cuts).unwrap(),
            messages,
            "pieces of {piece}"
        );
    }
}

fn to_smithy(m: &Message) -> SmithyMessage {
    let headers = m
        .headers
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Bool(v) => SmithyValue::Bool(*v),
                HeaderValue::Byte(v) => SmithyValue::Byte(*v),
                HeaderValue::Int16(v) => SmithyValue::Int16(*v),
                HeaderValue::Int32(v) => SmithyValue::Int32(*v),
                HeaderValue::Int64(v) => SmithyValue::Int64(*v),
                HeaderValue::ByteArray(v) => SmithyValue::ByteArray(v.clone()),
                HeaderValue::String(v) => SmithyValue::String(v.to_string().into()),
                HeaderValue::Timestamp(v) => SmithyValue::Timestamp(DateTime::from_millis(*v)),
                HeaderValue::Uuid(v) => SmithyValue::Uuid(*v),
                other => panic!("no smithy equivalent for {other:?}"),
            };
            SmithyHeader::new(h.name.to_string(), value)
        })
        .collect();
    SmithyMessage::new_from_parts(headers, m.payload.clone())
}

fn from_smithy(m: &SmithyMessage) -> Message {
    m.headers()
        .iter()
        .fold(Message::new(m.payload().clone()), |out, h| {
            let value = match h.value() {
                SmithyValue::Bool(v) => HeaderValue::Bool(*v),
                SmithyValue::Byte(v) => HeaderValue::Byte(*v),
                SmithyValue::Int16(v) => HeaderValue::Int16(*v),
                SmithyValue::Int32(v) => HeaderValue::Int32(*v),
                SmithyValue::Int64(v) => HeaderValue::Int64(*v),
                SmithyValue::ByteArray(v) => HeaderValue::ByteArray(v.clone()),
                SmithyValue::String(v) => HeaderValue::String(v.as_str().to_owned().into()),
                SmithyValue::Timestamp(v) => HeaderValue::Timestamp(v.to_millis().unwrap()),
                SmithyValue::Uuid(v) => HeaderValue::Uuid(*v),
                other => panic!("unknown smithy value {other:?}"),
            };
            out.with_header(h.name().as_str().to_owned(), value)
        })
}

/// Our decoder's verdict on a single frame: the first message, or the error.
fn ours(bytes: &[u8]) -> Result<Message, DecodeErrorKind> {
    let mut decoder = MessageDecoder::new();
    decoder.feed(Bytes::copy_from_slice(bytes));
    match decoder.decode() {
        Ok(Decoded::Message(m)) => Ok(m),
        Ok(Decoded::Incomplete) => Err(DecodeErrorKind::UnexpectedEof),
        Err(e) => Err(e.kind()),
    }
}

fn theirs(bytes: &[u8]) -> Option<Message> {
    read_message_from(bytes).ok().map(|m| from_smithy(&m))
}

fn fix_crcs(frame: &mut [u8]) {
    if frame.len() < 16 {
        return;
    }
    let prelude = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&prelude.to_be_bytes());
    let end = frame.len() - 4;
    let message = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&message.to_be_bytes());
}

/// Both decoders accept or both reject; when both accept they return the same message. The one
/// deliberate difference: the wire format gives header names 1..=255 bytes, and smithy accepts
/// an empty name that we refuse.
fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    match (ours(bytes), theirs(bytes)) {
        (Ok(a), Some(b)) => prop_assert_eq!(a, b),
        (Err(_), None) => {}
        (Err(kind), Some(b)) if b.headers.iter().any(|h| h.name.is_empty()) => {
            prop_assert_eq!(kind, DecodeErrorKind::InvalidHeader);
        }
        (a, b) => prop_assert!(
            false,
            "disagree on {}: ours {:?}, smithy {:?}",
            hex::encode(bytes),
            a,
            b
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn smithy_and_ours_encode_the_same_bytes(m in message()) {
        let mut theirs = Vec::new();
        write_message_to(&to_smithy(&m), &mut theirs).unwrap();
        prop_assert_eq!(&m.to_bytes().unwrap()[..], &theirs[..]);
        agree(&theirs)?;
    }

    #[test]
    fn corrupted_frames(m in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4)) {
        let mut frame = m.to_bytes().unwrap().to_vec();
        for (at, xor) in &flips {
            let at = at.index(frame.len());
            frame[at] ^= xor;
        }
        agree(&frame)?;
    }

    #[test]
    fn corrupted_frames_with_fixed_crcs(m in message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4)) {
        let mut frame = m.to_bytes().unwrap().to_vec();
        for (at, xor) in &flips {
            // Leave the total length alone so the frame stays whole; lengths inside may break.
            let at = 4 + at.index(frame.len() - 8);
            frame[at] ^= xor;
        }
        fix_crcs(&mut frame);
        agree(&frame)?;
    }

    #[test]
    fn truncated_frames(m in message(), cut in any::<prop::sample::Index>()) {
        let frame = m.to_bytes().unwrap();
        let cut = cut.index(frame.len());
        agree(&frame[..cut])?;
    }
}
