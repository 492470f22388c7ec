#![no_main]

//! Record data through the `csv` row decoder and back through its encoder.
//! `kds_fuzz::RoundTrip::run` says what is checked; the first byte picks the table.

use std::cell::RefCell;

use kds_fuzz::RoundTrip;

const TABLES: [&str; 3] = [
    "id INT, name STRING, d DECIMAL(10, 3), tags ARRAY<BIGINT>, b BYTES, t TIME(3)', 'format' = 'csv', 'csv.null-literal' = 'N",
    "s STRING, n ARRAY<INT>, at TIMESTAMP(3), b BOOLEAN, d DATE, ltz TIMESTAMP_LTZ(3)', 'format' = 'csv', 'csv.field-delimiter' = '|', 'csv.quote-character' = '''', 'csv.escape-character' = '\\', 'csv.allow-comments' = 'true', 'csv.ignore-parse-errors' = 'true', 'csv.array-element-delimiter' = ',', 'csv.null-literal' = '\\N",
    "i BIGINT, f DOUBLE, s STRING', 'format' = 'csv', 'csv.disable-quote-character' = 'true', 'csv.escape-character' = '\\', 'csv.allow-comments' = 'true', 'csv.null-literal' = 'null",
];

thread_local! {
    static ROUND_TRIP: RefCell<RoundTrip> = RefCell::new(RoundTrip::new(&TABLES));
}

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| ROUND_TRIP.with_borrow_mut(|round_trip| round_trip.run(data))
);
