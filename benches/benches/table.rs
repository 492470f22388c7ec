//! kds-table's JSON format beside arrow-json used directly on the same bytes, in the same run.
//!
//! Input: 100 000 JSON records of about 200 bytes (seven columns: integers, strings, a double,
//! a timestamp, a boolean and an array), decoded in GetRecords-sized pages of 1000 records, and
//! the decoded rows encoded back, one record per row. Also: decoding when one record in a
//! hundred is bad and skipped. Throughput is rows.

use std::hint::black_box;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::LineDelimitedWriter;
use arrow_json::reader::ReaderBuilder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kds_table::{Partitioners, SourceRecord, TableDefinition};

const PAGE: usize = 1000;

const COLUMNS: &str = "user_id BIGINT, session STRING, event STRING, page STRING,
    amount DOUBLE, at TIMESTAMP(3), tags ARRAY<STRING>, ok BOOLEAN";

fn definition(metadata: bool) -> TableDefinition {
    let metadata = if metadata {
        ", shard VARCHAR(128) METADATA FROM 'shard-id' VIRTUAL,
         seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL,
         arrival TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL"
    } else {
        ""
    };
    TableDefinition::parse(
        &format!(
            "CREATE TABLE events ({COLUMNS}{metadata}) WITH ('connector' = 'kinesis',
             'stream' = 'events', 'aws.region' = 'us-east-1', 'format' = 'json')"
        ),
        &[],
    )
    .expect("valid table")
}

fn documents() -> Vec<String> {
    const EVENTS: [&str; 4] = ["page_view", "add_to_cart", "checkout", "search"];
    (0..100_000u64)
        .map(|i| {
            format!(
                r#"{{"user_id":{},"session":"{:032x}","event":"{}","page":"/products/{}/reviews","amount":{}.{:02},"at":"2026-11-26 07:{:02}:{:02}.{:03}","tags":["mobile","eu-west-{}"],"ok":{}}}"#,
                1_000_000 + i * 7919 % 100_000,
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                EVENTS[(i % 4) as usize],
                i % 5000,
                i % 1000,
                i % 100,
                i / 60 % 60,
                i % 60,
                i % 1000,
                i % 3,
                i % 2 == 0
            )
        })
        .collect()
}

fn table(c: &mut Criterion) {
    let documents = documents();
    let bytes: usize = documents.iter().map(String::len).sum();
    eprintln!(
        "{} records, {:.1} bytes each",
        documents.len(),
        bytes as f64 / documents.len() as f64
    );
    let sequence_numbers: Vec<String> = (0..documents.len())
        .map(|i| format!("49590338271490256608559692538361571095921575989136588898{i:06}"))
        .collect();
    let records: Vec<SourceRecord<'_>> = documents
        .iter()
        .zip(&sequence_numbers)
        .map(|(data, seq)| SourceRecord {
            shard_id: "shardId-000000000001",
            sequence_number: seq,
            sub_sequence_number: None,
            partition_key: "k",
            arrival_millis: 1_764_140_000_000,
            data: data.as_bytes(),
        })
        .collect();
    let plain = definition(false);
    let with_metadata = definition(true);
    let physical = Arc::new(plain.physical_schema());

    let mut group = c.benchmark_group("table_json");
    group.throughput(Throughput::Elements(documents.len() as u64));
    group.sample_size(20);

    group.bench_function("decode/arrow-json", |b| {
        let mut decoder = ReaderBuilder::new(Arc::clone(&physical))
            .with_batch_size(PAGE)
            .with_coerce_primitive(true)
            .build_decoder()
            .expect("decoder");
        b.iter(|| {
            for page in documents.chunks(PAGE) {
                for document in page {
                    decoder.decode(document.as_bytes()).expect("valid");
                }
                black_box(decoder.flush().expect("valid"));
            }
        });
    });
    for (name, table) in [
        ("decode/kds", &plain),
        ("decode/kds+metadata", &with_metadata),
    ] {
        group.bench_function(name, |b| {
            let mut decoder = table.decoder().expect("decoder");
            b.iter(|| {
                for page in records.chunks(PAGE) {
                    black_box(decoder.decode(page).expect("valid"));
                }
            });
        });
    }

    // One record in a hundred has a string where a number belongs (found only when the page
    // is flushed, the costlier kind); the table skips them.
    let bad = br#"{"user_id":"unknown","session":"x"}"#;
    let with_bad: Vec<SourceRecord<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| SourceRecord {
            data: if i % 100 == 50 { bad } else { r.data },
            ..*r
        })
        .collect();
    let lenient = TableDefinition::parse(
        &format!(
            "CREATE TABLE events ({COLUMNS}) WITH ('connector' = 'kinesis', 'stream' = 'events',
             'aws.region' = 'us-east-1', 'format' = 'json', 'json.ignore-parse-errors' = 'true')"
        ),
        &[],
    )
    .expect("valid table");
    group.bench_function("decode/kds 1% bad, skipped", |b| {
        let mut decoder = lenient.decoder().expect("decoder");
        b.iter(|| {
            for page in with_bad.chunks(PAGE) {
                black_box(decoder.decode(page).expect("skipped"));
            }
        });
    });

    let mut decoder = plain.decoder().expect("decoder");
    let pages: Vec<RecordBatch> = records
        .chunks(PAGE)
        .map(|page| decoder.decode(page).expect("valid"))
        .collect();
    group.bench_function("encode/arrow-json", |b| {
        b.iter(|| {
            for page in &pages {
                let mut out = Vec::with_capacity(page.num_rows() * 256);
                let mut writer = LineDelimitedWriter::new(&mut out);
                writer.write(page).expect("valid");
                writer.finish().expect("valid");
                drop(writer);
                black_box(out);
            }
        });
    });
    group.bench_function("encode/kds", |b| {
        // The partition key is the part a producer adds; it is benchmarked with the fixed key.
        let fixed = TableDefinition::parse(
            &format!(
                "CREATE TABLE events ({COLUMNS}) WITH ('connector' = 'kinesis', 'stream' = 'events',
                 'aws.region' = 'us-east-1', 'format' = 'json', 'sink.partitioner' = 'fixed')"
            ),
            &[],
        )
        .expect("valid table");
        let mut encoder = fixed.encoder(&Partitioners::new(), 0).expect("encoder");
        b.iter(|| {
            for page in &pages {
                black_box(encoder.encode(page).expect("valid"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, table);
criterion_main!(benches);
