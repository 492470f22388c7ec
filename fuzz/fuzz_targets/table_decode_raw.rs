#![no_main]

//! Record data through the `raw` row decoder and back through its encoder.
//! `kds_fuzz::decode_round_trip` says what is checked; the first byte picks the table.

use std::sync::OnceLock;

use kds_table::TableDefinition;

const TABLES: [&str; 4] = [
    "v BIGINT NOT NULL', 'format' = 'raw",
    "v STRING NOT NULL', 'format' = 'raw', 'raw.endianness' = 'little-endian",
    "v BYTES', 'format' = 'raw",
    "v DOUBLE', 'format' = 'raw', 'raw.endianness' = 'big-endian",
];

fn tables() -> &'static [TableDefinition] {
    static TABLE_DEFINITIONS: OnceLock<Vec<TableDefinition>> = OnceLock::new();
    TABLE_DEFINITIONS.get_or_init(|| kds_fuzz::tables(&TABLES))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| kds_fuzz::decode_round_trip(tables(), data));
