//! Peak heap memory of the row decoders on adversarial record data, measured by dhat's heap
//! profiler: whatever counts, lengths and nesting a record declares, a decode holds at most a
//! small multiple of the bytes it was given, and bad data is an error naming its record.
//!
//! One test function: dhat profiles one thing at a time in a process.

use kds_table::{ErrorKind, SourceRecord, TableDefinition};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: u64 = 1024 * 1024;

fn table(columns: &str, format: &str) -> TableDefinition {
    let sql = format!(
        "CREATE TABLE t ({columns}) WITH ('connector' = 'kinesis', 'stream' = 's', \
         'aws.region' = 'us-east-1', 'format' = '{format}')"
    );
    TableDefinition::parse(&sql, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// The most heap bytes live at once while `table` decodes `data` as one record, with what the
/// decode gave.
fn peak_of_decode(table: &TableDefinition, data: &[u8]) -> (u64, Result<usize, kds_table::Error>) {
    let mut decoder = table.decoder().unwrap();
    let record = SourceRecord {
        shard_id: "shardId-000000000000",
        sequence_number: "1",
        sub_sequence_number: None,
        partition_key: "k",
        arrival_millis: 0,
        data,
    };
    let profiler = dhat::Profiler::builder().testing().build();
    let decoded = decoder
        .decode(std::slice::from_ref(&record))
        .map(|rows| rows.num_rows());
    let stats = dhat::HeapStats::get();
    drop(profiler);
    (stats.max_bytes as u64, decoded)
}

/// An Avro long (zig-zag varint).
fn avro_long(value: i64, out: &mut Vec<u8>) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[test]
fn adversarial_records_cost_a_bounded_multiple_of_their_size() {
    let avro_array = table("a ARRAY<INT NOT NULL> NOT NULL", "avro");
    let avro_map = table("m MAP<STRING, INT> NOT NULL", "avro");
    let avro_text = table("s STRING NOT NULL, b BYTES NOT NULL", "avro");
    let json = table("a ARRAY<INT>, r ROW<x STRING>", "json");
    let csv = table("a STRING, b INT", "csv");

    let mut cases: Vec<(&str, &TableDefinition, Vec<u8>)> = Vec::new();
    // An array block declaring 2^26 elements (256 MiB of INTs), with a MiB of them.
    let mut data = Vec::new();
    avro_long(1 << 26, &mut data);
    data.extend(std::iter::repeat_n(0x02, 1 << 20));
    cases.push(("avro array of 2^26 elements", &avro_array, data));
    // An array block declaring 2^60 elements, then a MiB of them.
    let mut data = Vec::new();
    avro_long(1 << 60, &mut data);
    data.extend(std::iter::repeat_n(0x02, 1 << 20));
    cases.push(("avro array of 2^60 elements", &avro_array, data));
    // A negative block count (with its byte size) declaring 2^60 elements.
    let mut data = Vec::new();
    avro_long(-(1 << 60), &mut data);
    avro_long(1 << 20, &mut data);
    data.extend(std::iter::repeat_n(0x02, 1 << 20));
    cases.push(("avro array, negative count", &avro_array, data));
    // A map block declaring 2^60 entries, then a MiB of one-byte keys.
    let mut data = Vec::new();
    avro_long(1 << 60, &mut data);
    data.extend(std::iter::repeat_n(0x00, 1 << 20));
    cases.push(("avro map of 2^60 entries", &avro_map, data));
    // A string declaring 2^60 bytes, and bytes declaring 2^40.
    let mut data = Vec::new();
    avro_long(1 << 60, &mut data);
    data.extend(std::iter::repeat_n(b'x', 1 << 20));
    cases.push(("avro string of 2^60 bytes", &avro_text, data));
    let mut data = vec![0x02, b'x'];
    avro_long(1 << 40, &mut data);
    data.extend(std::iter::repeat_n(b'x', 1 << 20));
    cases.push(("avro bytes of 2^40 bytes", &avro_text, data));
    // JSON nested a million levels deep, and a MiB of empty arrays in one.
    cases.push((
        "json nested 1 000 000 deep",
        &json,
        [b'['; 1_000_000].to_vec(),
    ));
    let mut data = br#"{"a": ["#.to_vec();
    data.extend(std::iter::repeat_n(&b"[],"[..], 1 << 18).flatten());
    data.extend_from_slice(b"1]}");
    cases.push(("json array of 2^18 arrays", &json, data));
    // CSV with a million fields and a million quotes.
    cases.push(("csv of 1 000 000 fields", &csv, [b','; 1_000_000].to_vec()));
    cases.push(("csv of 1 000 000 quotes", &csv, [b'"'; 1_000_000].to_vec()));

    for (name, table, data) in &cases {
        let input = data.len() as u64;
        let (peak, decoded) = peak_of_decode(table, data);
        eprintln!("{name}: {input} bytes, peak {peak} bytes, {decoded:?}");
        match decoded {
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Decode, "{name}: {error}");
                assert_eq!(error.record().unwrap().sequence_number, "1", "{name}");
            }
            Ok(rows) => panic!("{name}: decoded {rows} rows"),
        }
        // arrow-json's tape holds about 23 bytes for each array or object opened.
        let bound = if name.starts_with("json") { 32 } else { 4 } * input + MIB;
        assert!(peak <= bound, "{name}: {peak} bytes for {input}");
    }
}
