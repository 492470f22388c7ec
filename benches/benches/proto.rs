//! kds-proto hot paths beside their anchors, measured in the same run.
//!
//! - `get_records/*`: decode a GetRecords response of 1000 × 1 KiB records. Anchors: serde_json +
//!   base64 (how a serde-based client decodes the JSON body), and a memcpy of the body (floor).
//! - `get_records_cold/*`: the same from 48 bodies decoded in turn, none of them in cache.
//! - `put_records/*`: encode a PutRecords request of 500 × 1 KiB. Anchor: serde_json + base64.
//! - `subscribe/*`: 10 SubscribeToShard events of 100 × 1 KiB records. Frames only, ours beside
//!   `aws-smithy-eventstream` and one crc32fast pass over the same bytes; frames plus payload,
//!   ours beside `aws-smithy-eventstream` + serde_json + base64.
//! - `subscribe_200x100/*`: enhanced fan-out's workload, 200 events, owned and lent records;
//!   `cold/*` the same from copies of the body decoded in turn, none of them in cache.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kds_benches::anchor::{SerdeEvent, SerdeGetRecords, decode_serde_records, smithy_frames};
use kds_benches::{get_records_body, put_records_request, subscribe_body};
use kds_proto::eventstream::{
    Decoded, MessageDecoder, SubscribeToShardDecoder, SubscribeToShardItem, SubscribeToShardVisit,
};
use kds_proto::model::GetRecordsOutput;
use kds_proto::{Protocol, Shape};
use serde::Serialize;

const RECORD: usize = 1024;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SerdeEntry {
    data: String,
    partition_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SerdePutRecords<'a> {
    records: Vec<SerdeEntry>,
    stream_name: &'a str,
}

fn get_records(c: &mut Criterion) {
    let count = 1000;
    let mut group = c.benchmark_group("get_records");
    group.throughput(Throughput::Elements(count as u64));
    let json = get_records_body(count, RECORD, Protocol::Json);
    let cbor = get_records_body(count, RECORD, Protocol::Cbor);
    group.bench_function("kds_json", |b| {
        b.iter(|| {
            GetRecordsOutput::decode_body(black_box(json.clone()), Protocol::Json).expect("decodes")
        });
    });
    group.bench_function("kds_cbor", |b| {
        b.iter(|| {
            GetRecordsOutput::decode_body(black_box(cbor.clone()), Protocol::Cbor).expect("decodes")
        });
    });
    group.bench_function("kds_json_visit", |b| {
        b.iter(|| {
            let mut n = 0;
            GetRecordsOutput::visit_records(black_box(json.clone()), Protocol::Json, |r| {
                n += black_box(r.data).len();
            })
            .expect("decodes");
            n
        });
    });
    group.bench_function("kds_cbor_visit", |b| {
        b.iter(|| {
            let mut n = 0;
            GetRecordsOutput::visit_records(black_box(cbor.clone()), Protocol::Cbor, |r| {
                n += black_box(r.data).len();
            })
            .expect("decodes");
            n
        });
    });
    group.bench_function("serde_json_base64", |b| {
        b.iter(|| {
            let parsed: SerdeGetRecords<'_> =
                serde_json::from_slice(black_box(&json)).expect("parses");
            decode_serde_records(&parsed.records)
        });
    });
    group.bench_function("memcpy_json_body", |b| b.iter(|| black_box(json.to_vec())));
    group.finish();
}

/// GetRecords decoding from memory the caches do not hold: 48 copies of the 1000 × 1 KiB body
/// at distinct addresses (about 67 MB of JSON, twice the last-level cache of the machine the
/// numbers in BENCHMARKS.md come from), decoded in turn, so each body arrives cold, as one fresh
/// from a socket does. This is the decode cost that predicts the client's.
fn get_records_cold(c: &mut Criterion) {
    let count = 1000;
    let mut group = c.benchmark_group("get_records_cold");
    group.throughput(Throughput::Elements(count as u64));
    for (name, protocol) in [("json", Protocol::Json), ("cbor", Protocol::Cbor)] {
        let body = get_records_body(count, RECORD, protocol);
        let bodies: Vec<Bytes> = (0..48).map(|_| Bytes::copy_from_slice(&body)).collect();
        let mut next = 0;
        group.bench_function(format!("kds_{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                GetRecordsOutput::decode_body(bodies[next].clone(), protocol).expect("decodes")
            });
        });
        let mut next = 0;
        group.bench_function(format!("kds_{name}_visit"), |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                let mut n = 0;
                GetRecordsOutput::visit_records(bodies[next].clone(), protocol, |r| {
                    n += black_box(r.data).len();
                })
                .expect("decodes");
                n
            });
        });
    }
    group.finish();
}

fn put_records(c: &mut Criterion) {
    let count = 500;
    let mut group = c.benchmark_group("put_records");
    group.throughput(Throughput::Elements(count as u64));
    let request = put_records_request(count, RECORD);
    group.bench_function("kds_json", |b| {
        b.iter(|| black_box(&request).encode_body(Protocol::Json));
    });
    group.bench_function("kds_cbor", |b| {
        b.iter(|| black_box(&request).encode_body(Protocol::Cbor));
    });
    group.bench_function("serde_json_base64", |b| {
        b.iter(|| {
            let body = SerdePutRecords {
                records: black_box(&request)
                    .records
                    .iter()
                    .map(|e| SerdeEntry {
                        data: STANDARD.encode(&e.data),
                        partition_key: e.partition_key.as_str().to_owned(),
                    })
                    .collect(),
                stream_name: "bench-stream",
            };
            serde_json::to_vec(&body).expect("serializes")
        });
    });
    group.finish();
}

/// Decodes a SubscribeToShard body into owned events; the number of records.
fn collect_events(protocol: Protocol, body: &Bytes) -> usize {
    let mut decoder = SubscribeToShardDecoder::new(protocol);
    decoder.feed(black_box(body.clone()));
    let mut n = 0;
    while let Some(SubscribeToShardItem::Event(e)) = decoder.next_item().expect("valid") {
        n += e.records.len();
    }
    n
}

/// Decodes a SubscribeToShard body lending each record; the bytes of record data.
fn visit_events(protocol: Protocol, body: &Bytes) -> usize {
    let mut decoder = SubscribeToShardDecoder::new(protocol);
    decoder.feed(black_box(body.clone()));
    let mut bytes = 0;
    while let Some(SubscribeToShardVisit::Event(_)) = decoder
        .next_visit(|r| bytes += r.data.len())
        .expect("valid")
    {}
    bytes
}

fn subscribe(c: &mut Criterion) {
    let (events, per_event) = (10, 100);
    let json = subscribe_body(events, per_event, RECORD, Protocol::Json);
    let cbor = subscribe_body(events, per_event, RECORD, Protocol::Cbor);
    let mut group = c.benchmark_group("subscribe");
    group.throughput(Throughput::Elements((events * per_event) as u64));

    group.bench_function("frames/kds", |b| {
        b.iter(|| {
            let mut decoder = MessageDecoder::new();
            decoder.feed(black_box(json.clone()));
            let mut n = 0;
            while let Decoded::Message(m) = decoder.decode().expect("valid") {
                n += m.payload.len();
            }
            n
        });
    });
    group.bench_function("frames/smithy", |b| {
        b.iter(|| smithy_frames(black_box(&json)).len());
    });
    group.bench_function("frames/crc32fast_once", |b| {
        b.iter(|| crc32fast::hash(black_box(&json)));
    });

    for (name, protocol, body) in [
        ("payload/kds_json", Protocol::Json, &json),
        ("payload/kds_cbor", Protocol::Cbor, &cbor),
    ] {
        group.bench_function(name, |b| b.iter(|| collect_events(protocol, body)));
    }
    group.bench_function("payload/smithy_serde_json_base64", |b| {
        b.iter(|| {
            let mut n = 0;
            for message in smithy_frames(black_box(&json)) {
                let event: SerdeEvent<'_> =
                    serde_json::from_slice(message.payload()).expect("parses");
                n += decode_serde_records(&event.records);
            }
            n
        });
    });
    group.finish();
}

/// Enhanced fan-out's workload (issue 5): 200 events of 100 records of 1 KiB, from bytes to
/// records, owned and lent, beside one CRC-32 pass over the same bytes (the frames' floor).
fn subscribe_efo(c: &mut Criterion) {
    let (events, per_event) = (200, 100);
    let json = subscribe_body(events, per_event, RECORD, Protocol::Json);
    let cbor = subscribe_body(events, per_event, RECORD, Protocol::Cbor);
    let mut group = c.benchmark_group("subscribe_200x100");
    group.throughput(Throughput::Elements((events * per_event) as u64));
    group.sample_size(20);
    group.bench_function("crc32fast_once", |b| {
        b.iter(|| crc32fast::hash(black_box(&cbor)));
    });
    for (name, protocol, body) in [
        ("kds_json", Protocol::Json, &json),
        ("kds_cbor", Protocol::Cbor, &cbor),
    ] {
        group.bench_function(name, |b| b.iter(|| collect_events(protocol, body)));
    }
    for (name, protocol, body) in [
        ("kds_json_visit", Protocol::Json, &json),
        ("kds_cbor_visit", Protocol::Cbor, &cbor),
    ] {
        group.bench_function(name, |b| b.iter(|| visit_events(protocol, body)));
    }
    // Cold: copies of the body at distinct addresses, twice the last-level cache in all,
    // decoded in turn, so no body is in cache, as one fresh from a socket is not.
    for (name, protocol, body) in [
        ("json", Protocol::Json, &json),
        ("cbor", Protocol::Cbor, &cbor),
    ] {
        let copies = (COLD_BYTES / body.len()).max(2) + 1;
        let bodies: Vec<Bytes> = (0..copies).map(|_| Bytes::copy_from_slice(body)).collect();
        let mut next = 0;
        group.bench_function(format!("cold/kds_{name}"), |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                collect_events(protocol, &bodies[next])
            });
        });
        let mut next = 0;
        group.bench_function(format!("cold/kds_{name}_visit"), |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                visit_events(protocol, &bodies[next])
            });
        });
    }
    group.finish();
}

/// Bytes of distinct bodies a cold benchmark cycles through: twice the 32 MiB last-level cache
/// of the machine the results in BENCHMARKS.md come from.
const COLD_BYTES: usize = 64 << 20;

criterion_group!(
    benches,
    get_records,
    get_records_cold,
    put_records,
    subscribe,
    subscribe_efo
);
criterion_main!(benches);
