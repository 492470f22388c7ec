//! kds-stream's records-to-rows path beside its parts used directly on the same bytes, in the
//! same run: GetRecords response bytes → owned records → KPL deaggregation with the hash key
//! filter → rows of a JSON table (`RowAssembler`), against kds-proto's lent record decode feeding
//! arrow-json's decoder record by record (the least any reader of these bytes must do).
//!
//! And its rows-to-records path: Arrow record batches → rows encoded by the table's format and
//! keyed by its partitioner → PutRecords requests cut by the sink's queue → request bodies
//! (`RowEncoder` + `PutQueue`), against arrow-json's line writer, the rows split into entries
//! keyed by their column, and kds-proto's PutRecords encode on the same batches.
//!
//! Input: 40 distinct GetRecords responses of 500 records (20 000 records, about 24 MB of JSON
//! or 21 MB of CBOR: more than the caches hold), each record a JSON row of about 1 KiB (an id,
//! two short strings, a double, a timestamp and a long text). Throughput is records.

use std::hint::black_box;
use std::sync::Arc;

use arrow_json::reader::ReaderBuilder;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kds_proto::model::{GetRecordsOutput, Record};
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{PartitionKey, SequenceNumber, ShardId, ShardIterator, Timestamp};
use kds_proto::{Protocol, Shape};
use kds_stream::{PutQueue, RowAssembler, WriterConfig};
use kds_table::{Partitioners, TableDefinition};

const PAGES: usize = 40;
const PER_PAGE: usize = 500;

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
            "CREATE TABLE orders (id BIGINT, customer STRING, status STRING, amount DOUBLE,
               placed TIMESTAMP(3), note STRING{metadata})
             WITH ('connector' = 'kinesis', 'stream' = 'orders', 'aws.region' = 'us-east-1',
                   'format' = 'json')"
        ),
        &[],
    )
    .expect("valid table")
}

/// Row `n` as JSON, about 1 KiB.
fn row(n: u64) -> Bytes {
    let note: String = (0..900)
        .map(|i| char::from(b'a' + ((n as usize * 31 + i * 7) % 26) as u8))
        .collect();
    Bytes::from(format!(
        r#"{{"id":{n},"customer":"c-{:06}","status":"{}","amount":{}.{:02},"placed":"2026-12-06 09:{:02}:{:02}.{:03}","note":"{note}"}}"#,
        n * 7919 % 1_000_000,
        ["new", "paid", "shipped"][(n % 3) as usize],
        n % 1000,
        n % 100,
        n / 60 % 60,
        n % 60,
        n % 1000,
    ))
}

fn pages(protocol: Protocol) -> Vec<Bytes> {
    (0..PAGES)
        .map(|p| {
            let records = (0..PER_PAGE)
                .map(|i| {
                    let n = (p * PER_PAGE + i) as u64;
                    let mut record = Record::new(
                        SequenceNumber::new(format!(
                            "4959033827149025660855969253836157109592157598913{n:07}"
                        ))
                        .expect("valid"),
                        row(n),
                        PartitionKey::new(format!("customer-{}", n % 977)).expect("valid"),
                    );
                    record.approximate_arrival_timestamp =
                        Some(Timestamp::from_millis(1_765_000_000_000 + n as i64));
                    record
                })
                .collect();
            let mut output = GetRecordsOutput::new(records);
            output.next_shard_iterator =
                Some(ShardIterator::new("AAAAAAAAAAHb".repeat(20)).expect("valid"));
            output.millis_behind_latest = Some(0);
            output.encode_body(protocol).into()
        })
        .collect()
}

fn stream(c: &mut Criterion) {
    let shard = ShardId::new("shardId-000000000000").expect("valid");
    let mut group = c.benchmark_group("records_to_rows");
    group.throughput(Throughput::Elements((PAGES * PER_PAGE) as u64));
    group.sample_size(20);
    for (wire, protocol) in [("cbor", Protocol::Cbor), ("json", Protocol::Json)] {
        let bodies = pages(protocol);
        let schema = Arc::new(definition(false).physical_schema());
        // The parts: each record's data, lent, copied into one buffer that arrow-json decodes
        // at once (faster than feeding arrow-json record by record).
        group.bench_function(format!("{wire}/parts: lent decode + arrow-json"), |b| {
            let mut lines = Vec::with_capacity(PER_PAGE * 1100);
            b.iter(|| {
                let mut rows = 0;
                for body in &bodies {
                    lines.clear();
                    GetRecordsOutput::visit_records(body.clone(), protocol, |r| {
                        lines.extend_from_slice(r.data);
                        lines.push(b'\n');
                    })
                    .expect("a page");
                    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
                        .with_batch_size(PER_PAGE)
                        .build_decoder()
                        .expect("a decoder");
                    decoder.decode(&lines).expect("rows");
                    rows += decoder.flush().expect("rows").expect("a batch").num_rows();
                }
                black_box(rows)
            });
        });
        for (label, metadata) in [("kds", false), ("kds, 3 metadata columns", true)] {
            let mut assembler =
                RowAssembler::new(definition(metadata).decoder().expect("ok"), false);
            group.bench_function(format!("{wire}/{label}: RowAssembler"), |b| {
                b.iter(|| {
                    let mut rows = 0;
                    for body in &bodies {
                        let page =
                            GetRecordsOutput::decode_body(body.clone(), protocol).expect("a page");
                        let assembled = assembler
                            .assemble(&shard, (0, u128::MAX), page.records, None)
                            .expect("rows");
                        rows += assembled.rows.num_rows();
                    }
                    black_box(rows)
                });
            });
        }
    }
    group.finish();
}

/// The sink's table: the same columns, keyed by customer.
fn sink_definition() -> TableDefinition {
    TableDefinition::parse(
        "CREATE TABLE orders (id BIGINT, customer STRING, status STRING, amount DOUBLE,
           placed TIMESTAMP(3), note STRING) PARTITIONED BY (customer)
         WITH ('connector' = 'kinesis', 'stream' = 'orders', 'aws.region' = 'us-east-1',
               'format' = 'json')",
        &[],
    )
    .expect("valid table")
}

fn sink(c: &mut Criterion) {
    let definition = sink_definition();
    let schema = Arc::new(definition.physical_schema());
    // The rows of the 40 pages, as 40 batches of 500.
    let batches: Vec<arrow_array::RecordBatch> = (0..PAGES)
        .map(|p| {
            let mut lines = Vec::new();
            for i in 0..PER_PAGE {
                lines.extend_from_slice(&row((p * PER_PAGE + i) as u64));
                lines.push(b'\n');
            }
            let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
                .with_batch_size(PER_PAGE)
                .build_decoder()
                .expect("a decoder");
            decoder.decode(&lines).expect("rows");
            decoder.flush().expect("rows").expect("a batch")
        })
        .collect();
    let mut group = c.benchmark_group("rows_to_put_records");
    group.throughput(Throughput::Elements((PAGES * PER_PAGE) as u64));
    group.sample_size(20);
    group.bench_function(
        "json/parts: arrow-json writer + entries + PutRecords encode",
        |b| {
            b.iter(|| {
                let mut bytes = 0;
                for batch in &batches {
                    let mut out = Vec::with_capacity(PER_PAGE * 1100);
                    let mut writer = arrow_json::LineDelimitedWriter::new(&mut out);
                    writer.write(batch).expect("rows");
                    writer.finish().expect("rows");
                    drop(writer);
                    let out = Bytes::from(out);
                    let customers = batch
                        .column(1)
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .expect("strings");
                    let mut start = 0;
                    let mut entries = Vec::with_capacity(PER_PAGE);
                    for (i, end) in memchr_newlines(&out).into_iter().enumerate() {
                        entries.push(PutRecordsRequestEntry::new(
                            out.slice(start..end),
                            PartitionKey::new(customers.value(i)).expect("valid"),
                        ));
                        start = end + 1;
                    }
                    bytes += PutRecordsInput::new(entries)
                        .encode_body(Protocol::Json)
                        .len();
                }
                black_box(bytes)
            });
        },
    );
    let mut encoder = definition
        .encoder(&Partitioners::new(), 0)
        .expect("an encoder");
    let mut config = WriterConfig::default();
    config.max_in_flight = usize::MAX / 2;
    group.bench_function("json/kds: RowEncoder + PutQueue + PutRecords encode", |b| {
        b.iter(|| {
            let mut bytes = 0;
            let mut queue = PutQueue::new(&config);
            let now = std::time::Instant::now();
            for batch in &batches {
                for record in encoder.encode(batch).expect("records") {
                    let entry = PutRecordsRequestEntry::new(
                        record.data,
                        PartitionKey::new(record.partition_key).expect("valid"),
                    );
                    queue.push(entry, (), now);
                }
                while let Some(request) = queue.next_request(now, false) {
                    bytes += PutRecordsInput::new(request.entries)
                        .encode_body(Protocol::Json)
                        .len();
                }
            }
            black_box(bytes)
        });
    });
    group.finish();
}

/// Where each line of `text` ends.
fn memchr_newlines(text: &[u8]) -> Vec<usize> {
    text.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect()
}

criterion_group!(benches, stream, sink);
criterion_main!(benches);
