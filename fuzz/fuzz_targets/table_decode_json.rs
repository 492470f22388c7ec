#![no_main]

//! Record data through the `json` row decoder and back through its encoder.
//! `kds_fuzz::RoundTrip::run` says what is checked; the first byte picks the table.

use std::cell::RefCell;

use kds_fuzz::RoundTrip;

const TABLES: [&str; 4] = [
    "id BIGINT, name STRING, tags ARRAY<INT>, r ROW<x DOUBLE, b BYTES>, m MAP<STRING, TIMESTAMP(3)>', 'format' = 'json",
    "id BIGINT NOT NULL, name STRING, at TIMESTAMP_LTZ(6), t TIME(6), d DATE', 'format' = 'json', 'json.ignore-parse-errors' = 'true",
    "d DECIMAL(20, 4), ts TIMESTAMP(3), ltz TIMESTAMP_LTZ(3), b BOOLEAN, f FLOAT, small SMALLINT, tiny TINYINT, c CHAR(3), vb VARBINARY(4)', 'format' = 'json', 'json.fail-on-missing-field' = 'true', 'json.timestamp-format.standard' = 'ISO-8601",
    "m MAP<STRING, ARRAY<ROW<a INT, b STRING>>>, d DECIMAL(38, 18), n ROW<inner ROW<z BIGINT NOT NULL>>', 'format' = 'json', 'json.map-null-key.mode' = 'LITERAL', 'json.map-null-key.literal' = 'null', 'json.encode.decimal-as-plain-number' = 'true', 'json.encode.ignore-null-fields' = 'true",
];

thread_local! {
    static ROUND_TRIP: RefCell<RoundTrip> = RefCell::new(RoundTrip::new(&TABLES));
}

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| ROUND_TRIP.with_borrow_mut(|round_trip| round_trip.run(data))
);
