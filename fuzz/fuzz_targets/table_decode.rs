#![no_main]

//! Record data of every format through the row decoder, and the decoded rows back through the
//! encoder and the decoder. The first byte picks the table; the rest is split into records at
//! each `0xff 0x00`.

use std::sync::OnceLock;

use kds_table::{ErrorKind, Partitioners, SourceRecord, TableDefinition};

const TABLES: [&str; 6] = [
    "id BIGINT, name STRING, tags ARRAY<INT>, r ROW<x DOUBLE, b BYTES>, m MAP<STRING, TIMESTAMP(3)>', 'format' = 'json",
    "id BIGINT NOT NULL, name STRING, at TIMESTAMP_LTZ(6), t TIME(6), d DATE', 'format' = 'json', 'json.ignore-parse-errors' = 'true",
    "id INT, name STRING, d DECIMAL(10, 3), tags ARRAY<BIGINT>, b BYTES, t TIME(3)', 'format' = 'csv', 'csv.null-literal' = 'N",
    "id BIGINT NOT NULL, name STRING, d DECIMAL(10, 3), tags ARRAY<STRING>, m MAP<STRING, ROW<x INT>>, t TIMESTAMP(3)', 'format' = 'avro",
    "v BIGINT NOT NULL', 'format' = 'raw",
    "v STRING NOT NULL', 'format' = 'raw', 'raw.endianness' = 'little-endian",
];

/// The tables, parsed once.
fn tables() -> &'static [TableDefinition] {
    static TABLE_DEFINITIONS: OnceLock<Vec<TableDefinition>> = OnceLock::new();
    TABLE_DEFINITIONS.get_or_init(|| {
        TABLES
            .iter()
            .map(|text| {
                let (columns, options) = text.split_once("', ").expect("columns, then options");
                let sql = format!(
                    "CREATE TABLE t ({columns}, arrival TIMESTAMP(9) METADATA FROM 'timestamp', seq VARCHAR(128) METADATA FROM 'sequence-number' VIRTUAL)
                     WITH ('connector' = 'kinesis', 'stream' = 's', 'aws.region' = 'us-east-1', {options}')"
                );
                TableDefinition::parse(&sql, &[]).expect("a valid table")
            })
            .collect()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let table = &tables()[usize::from(pick) % TABLES.len()];

    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..rest.len().saturating_sub(1) {
        if rest[i] == 0xff && rest[i + 1] == 0 {
            parts.push(&rest[start..i]);
            start = i + 2;
        }
    }
    parts.push(&rest[start.min(rest.len())..]);
    let sequence_numbers: Vec<String> = (0..parts.len()).map(|i| i.to_string()).collect();
    // Arrival times and sub-sequence numbers from the first bytes of each record.
    let records: Vec<SourceRecord<'_>> = parts
        .iter()
        .zip(&sequence_numbers)
        .map(|(data, seq)| {
            let byte = data.first().copied().unwrap_or_default();
            SourceRecord {
                shard_id: "shardId-000000000000",
                sequence_number: seq,
                sub_sequence_number: (byte % 2 == 1).then_some(u64::from(byte) << 56),
                partition_key: "k",
                arrival_millis: i64::from(byte as i8) << (byte % 64),
                data,
            }
        })
        .collect();

    let mut decoder = table.decoder().expect("a decoder");
    let rows = match decoder.decode(&records) {
        Ok(rows) => rows,
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
            let record = error.record().expect("decode errors name the record");
            assert!(sequence_numbers.contains(&record.sequence_number));
            return;
        }
    };
    assert_eq!(rows.num_rows() as u64 + decoder.skipped(), records.len() as u64);

    // What was decoded encodes, and decodes to the same rows.
    let encoded = table
        .encoder(&Partitioners::new(), 0)
        .expect("an encoder")
        .encode(&rows)
        .expect("decoded rows encode");
    let again: Vec<SourceRecord<'_>> = encoded
        .iter()
        .zip(&sequence_numbers)
        .map(|(record, seq)| SourceRecord {
            shard_id: "shardId-000000000000",
            sequence_number: seq,
            sub_sequence_number: None,
            partition_key: "k",
            arrival_millis: 0,
            data: &record.data,
        })
        .collect();
    let mut decoder = table.decoder().expect("a decoder");
    let decoded_again = decoder.decode(&again).expect("encoded rows decode");
    assert_eq!(decoder.skipped(), 0);
    assert_eq!(decoded_again.num_rows(), rows.num_rows());
    // The physical columns (the last two are metadata, which differs after skips).
    for (i, column) in rows.columns()[..rows.num_columns() - 2].iter().enumerate() {
        assert_eq!(
            decoded_again.column(i).to_data(),
            column.to_data(),
            "column {i} of {encoded:?}"
        );
    }
});
