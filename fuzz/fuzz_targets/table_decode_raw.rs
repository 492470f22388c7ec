#![no_main]

//! Record data through the `raw` row decoder and back through its encoder.
//! `kds_fuzz::RoundTrip::run` says what is checked; the first byte picks the table.

use std::cell::RefCell;

use kds_fuzz::RoundTrip;

const TABLES: [&str; 4] = [
    "v BIGINT NOT NULL', 'format' = 'raw",
    "v STRING NOT NULL', 'format' = 'raw', 'raw.endianness' = 'little-endian",
    "v BYTES', 'format' = 'raw",
    "v DOUBLE', 'format' = 'raw', 'raw.endianness' = 'big-endian",
];

thread_local! {
    static ROUND_TRIP: RefCell<RoundTrip> = RefCell::new(RoundTrip::new(&TABLES));
}

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| ROUND_TRIP.with_borrow_mut(|round_trip| round_trip.run(data))
);
