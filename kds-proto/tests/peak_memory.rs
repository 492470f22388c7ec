//! Peak heap memory of kds-proto's decoders on adversarial input, measured by dhat's heap
//! profiler: a decode holds at most a small multiple of the bytes it was given, whatever counts
//! and lengths the input declares.
//!
//! One test function: dhat profiles one thing at a time in a process.

use bytes::Bytes;
use kds_proto::eventstream::{Decoded, Message, MessageDecoder};
use kds_proto::model::{GetRecordsOutput, Record};
use kds_proto::types::{PartitionKey, SequenceNumber};
use kds_proto::{Protocol, Shape};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: u64 = 1024 * 1024;

/// The most heap bytes live at once while `run` runs (what was live before it not counted).
fn peak(run: impl FnOnce()) -> u64 {
    let profiler = dhat::Profiler::builder().testing().build();
    run();
    let stats = dhat::HeapStats::get();
    drop(profiler);
    stats.max_bytes as u64
}

/// A GetRecords response of `count` records without data: the smallest records there are.
fn many_records(protocol: Protocol, count: usize) -> Bytes {
    let json = format!(
        r#"{{"Records":[{}],"MillisBehindLatest":0}}"#,
        vec![r#"{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","Data":"","PartitionKey":"k"}"#; count].join(",")
    );
    let output = GetRecordsOutput::decode_body(Bytes::from(json), Protocol::Json).unwrap();
    Bytes::from(output.encode_body(protocol))
}

/// A GetRecords page of `count` records of 1 KiB.
fn page_of_kib_records(count: usize) -> GetRecordsOutput {
    let records = (0..count)
        .map(|i| {
            Record::new(
                SequenceNumber::new(format!(
                    "4959033827149025660855969253836157109592157598913{i:07}"
                ))
                .unwrap(),
                Bytes::from(vec![i as u8; 1024]),
                PartitionKey::new(format!("key-{i}")).unwrap(),
            )
        })
        .collect();
    GetRecordsOutput::new(records)
}

/// A CBOR `{"Records": [...]}` whose array declares `u32::MAX` elements, followed by a MiB of
/// empty maps.
fn declared_huge() -> Bytes {
    let mut body = vec![0xA1, 0x67];
    body.extend_from_slice(b"Records");
    body.push(0x9A);
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    body.resize(body.len() + MIB as usize, 0xA0);
    Bytes::from(body)
}

/// An event-stream prelude (with a correct CRC) declaring `headers` bytes of headers in a
/// frame of `total` bytes.
fn prelude(total: u32, headers: u32) -> Bytes {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&total.to_be_bytes());
    bytes.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

#[test]
fn decoders_hold_a_bounded_multiple_of_their_input() {
    // Many small records: the decoded records are a few times their wire size.
    for protocol in [Protocol::Json, Protocol::Cbor] {
        let body = many_records(protocol, 20_000);
        let input = body.len() as u64;
        let used = peak(|| {
            let output = GetRecordsOutput::decode_body(body.clone(), protocol).unwrap();
            assert_eq!(output.records.len(), 20_000);
        });
        assert!(
            used <= 4 * input + MIB,
            "{protocol:?}: {used} bytes at peak for a {input}-byte response"
        );
        // Lent records hold nothing per record.
        let lent = peak(|| {
            let mut n = 0;
            GetRecordsOutput::visit_records(body.clone(), protocol, |_| n += 1).unwrap();
            assert_eq!(n, 20_000);
        });
        eprintln!("{protocol:?}: {input} bytes: {used} owned, {lent} lent");
        // The lent path keeps the decoded data of the page in one arena.
        assert!(lent <= input + MIB, "{protocol:?}: {lent} bytes lent");
    }

    // A page of 1000 records of 1 KiB, lent: one small buffer serves every record's data in
    // turn. Found with the client benchmark (issue 19): the JSON reader sized a new buffer for
    // the rest of the page, so each page of lent records allocated about its own size again.
    let page = page_of_kib_records(1000);
    for protocol in [Protocol::Json, Protocol::Cbor] {
        let body = Bytes::from(page.encode_body(protocol));
        let mut bytes = 0;
        let lent = peak(|| {
            GetRecordsOutput::visit_records(body.clone(), protocol, |r| bytes += r.data.len())
                .unwrap();
        });
        assert_eq!(bytes, 1000 * 1024);
        eprintln!("{protocol:?}: {} bytes: {lent} lent", body.len());
        assert!(
            lent <= 256 * 1024,
            "{protocol:?}: {lent} bytes at peak to lend a page of {} bytes",
            body.len()
        );
    }

    // A declared count of four billion records reserves no more than a few thousand.
    let body = declared_huge();
    let used = peak(|| {
        assert!(GetRecordsOutput::decode_body(body.clone(), Protocol::Cbor).is_err());
    });
    assert!(
        used <= 2 * MIB,
        "{used} bytes for a declared count of u32::MAX"
    );

    // JSON nested a million levels: refused at the depth limit.
    let nested = Bytes::from(format!("{{\"Records\":{}", "[".repeat(1_000_000)));
    let used = peak(|| {
        assert!(GetRecordsOutput::decode_body(nested.clone(), Protocol::Json).is_err());
    });
    assert!(used <= MIB, "{used} bytes for deep nesting");

    // An event-stream frame declaring 16 MiB of headers: refused from its prelude, before
    // anything is reserved for it.
    let used = peak(|| {
        let mut decoder = MessageDecoder::new();
        decoder.feed(prelude(16 * MIB as u32 + 16, 16 * MIB as u32));
        assert!(decoder.decode().is_err());
    });
    assert!(
        used <= MIB,
        "{used} bytes for a prelude declaring 16 MiB of headers"
    );

    // A frame declaring 16 MiB, of which only the prelude arrives: a bounded reservation.
    let used = peak(|| {
        let mut decoder = MessageDecoder::new();
        decoder.feed(prelude(16 * MIB as u32, 0));
        assert_eq!(decoder.decode().unwrap(), Decoded::Incomplete);
    });
    assert!(
        used <= 2 * MIB,
        "{used} bytes for a 16 MiB frame not yet sent"
    );

    // As many headers as 128 KiB holds (three bytes each): bounded by the cap.
    let mut message = Message::new(Bytes::new());
    for _ in 0..(128 * 1024 - 16) / 3 {
        message = message.with_header("a", kds_proto::eventstream::HeaderValue::Bool(true));
    }
    let frame = message.to_bytes().unwrap();
    let used = peak(|| {
        let mut decoder = MessageDecoder::new();
        decoder.feed(frame.clone());
        assert!(matches!(decoder.decode().unwrap(), Decoded::Message(_)));
    });
    assert!(
        used <= 8 * MIB,
        "{used} bytes for a frame of {} bytes of headers",
        frame.len()
    );
}
