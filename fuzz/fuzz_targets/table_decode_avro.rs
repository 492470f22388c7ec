#![no_main]

//! Record data through the `avro` row decoder and back through its encoder.
//! `kds_fuzz::RoundTrip::run` says what is checked; the first byte picks the table.

use std::cell::RefCell;

use kds_fuzz::RoundTrip;

const TABLES: [&str; 2] = [
    "id BIGINT NOT NULL, name STRING, d DECIMAL(10, 3), tags ARRAY<STRING>, m MAP<STRING, ROW<x INT>>, t TIMESTAMP(3)', 'format' = 'avro",
    "b BOOLEAN NOT NULL, f FLOAT, x DOUBLE NOT NULL, bytes BYTES, day DATE, t TIME(3), ltz TIMESTAMP_LTZ(6), r ROW<a ARRAY<ROW<s STRING NOT NULL>>, n INT>', 'format' = 'avro",
];

thread_local! {
    static ROUND_TRIP: RefCell<RoundTrip> = RefCell::new(RoundTrip::new(&TABLES));
}

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| ROUND_TRIP.with_borrow_mut(|round_trip| round_trip.run(data))
);
