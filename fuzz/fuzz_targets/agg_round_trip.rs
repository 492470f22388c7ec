#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kds_agg::fuzzing::round_trip(data));
