#![no_main]

//! Option maps built from the input (`key=value` lines; a line starting with `#` names a
//! PARTITIONED BY column), half of them on top of a valid base definition so that the deeper
//! checks (credentials, start position and its timestamp parsing, enhanced fan-out, sink) run.
//! A key `@N` is the N-th registered key, so that mutations reach every option's checks
//! rather than mostly the unknown-key error.

use std::collections::BTreeMap;

use kds_table::TableOptions;
use kds_table::registry::OPTIONS;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut options = BTreeMap::new();
    if data.first().is_some_and(|b| b & 1 == 1) {
        for (k, v) in [
            ("connector", "kinesis"),
            ("stream", "s"),
            ("format", "json"),
            ("aws.region", "us-east-1"),
            ("scan.stream.initpos", "AT_TIMESTAMP"),
        ] {
            options.insert(k.to_owned(), v.to_owned());
        }
    }
    let mut partition_keys = Vec::new();
    for line in text.lines() {
        if let Some(column) = line.strip_prefix('#') {
            partition_keys.push(column.to_owned());
        } else if let Some((k, v)) = line.split_once('=') {
            let key = match k.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => OPTIONS[n % OPTIONS.len()].key,
                None => k,
            };
            options.insert(key.to_owned(), v.to_owned());
        }
    }
    if let Ok(table) = TableOptions::parse(&options, &partition_keys, &["custom"]) {
        // Whatever parses is valid in itself.
        assert!(!table.stream.is_empty());
        assert!(table.aws.region.is_some() || table.aws.endpoint.is_some());
    }
});
