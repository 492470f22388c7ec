#![no_main]

//! Record data through the `avro` row decoder and back through its encoder.
//! `kds_fuzz::decode_round_trip` says what is checked; the first byte picks the table.

use std::sync::OnceLock;

use kds_table::TableDefinition;

const TABLES: [&str; 2] = [
    "id BIGINT NOT NULL, name STRING, d DECIMAL(10, 3), tags ARRAY<STRING>, m MAP<STRING, ROW<x INT>>, t TIMESTAMP(3)', 'format' = 'avro",
    "b BOOLEAN NOT NULL, f FLOAT, x DOUBLE NOT NULL, bytes BYTES, day DATE, t TIME(3), ltz TIMESTAMP_LTZ(6), r ROW<a ARRAY<ROW<s STRING NOT NULL>>, n INT>', 'format' = 'avro",
];

fn tables() -> &'static [TableDefinition] {
    static TABLE_DEFINITIONS: OnceLock<Vec<TableDefinition>> = OnceLock::new();
    TABLE_DEFINITIONS.get_or_init(|| kds_fuzz::tables(&TABLES))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| kds_fuzz::decode_round_trip(tables(), data));
