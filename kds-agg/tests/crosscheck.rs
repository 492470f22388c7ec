//! Cross-checks with the independent KPL implementations, PyPI and npm `aws-kinesis-agg`
//! (`testdata/crosscheck/README.md`).
//!
//! - Ours decode theirs: every vector those libraries produced deaggregates to the records they
//!   were given, and our aggregator, given the same records, produces the same bytes.
//! - Theirs decode ours: our aggregates for the same cases are kept in `testdata/ours/`; this test
//!   checks they are exactly what the aggregator produces today (`KDS_UPDATE_VECTORS=1`
//!   rewrites them), and `verify.py` / `verify.js` in CI deaggregate them with the two libraries.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use kds_agg::*;
use serde_json::{Value, json};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

struct Case {
    name: String,
    bin: Vec<u8>,
    records: Vec<ProducerRecord>,
}

fn cases(producer: &str) -> Vec<Case> {
    let dir = testdata().join("crosscheck").join(producer);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let meta: Value =
                serde_json::from_slice(&fs::read(dir.join(format!("{name}.json"))).unwrap())
                    .unwrap();
            let records = meta["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let record = ProducerRecord::new(
                        r["partition_key"].as_str().unwrap(),
                        hex::decode(r["data_hex"].as_str().unwrap()).unwrap(),
                    );
                    match r["explicit_hash_key"].as_str() {
                        Some(ehk) => record.with_explicit_hash_key(ehk.parse().unwrap()),
                        None => record,
                    }
                })
                .collect();
            Case {
                bin: fs::read(dir.join(format!("{name}.bin"))).unwrap(),
                name,
                records,
            }
        })
        .collect()
}

fn aggregate(records: &[ProducerRecord]) -> Aggregate {
    let mut aggregator =
        Aggregator::new(AggregatorConfig::default().with_max_size(1024 * 1024)).unwrap();
    for r in records {
        assert_eq!(
            aggregator.add(r, Instant::now()),
            Added::Buffered,
            "one aggregate per case"
        );
    }
    aggregator.flush().unwrap()
}

#[test]
fn ours_decode_theirs() {
    for producer in ["python", "node"] {
        let cases = cases(producer);
        assert_eq!(cases.len(), 6, "{producer}");
        for case in cases {
            let out = Deaggregator::new()
                .deaggregate(KinesisRecord::new(case.bin.clone(), "x", "1"))
                .unwrap_or_else(|e| panic!("{producer}/{}: {e}", case.name));
            assert_eq!(out.plain, None, "{producer}/{}", case.name);
            let got: Vec<(String, Option<u128>, Bytes)> = out
                .records
                .into_iter()
                .map(|r| {
                    (
                        r.partition_key_lossy().into_owned(),
                        r.explicit_hash_key,
                        r.data,
                    )
                })
                .collect();
            let want: Vec<(String, Option<u128>, Bytes)> = case
                .records
                .iter()
                .map(|r| (r.partition_key.clone(), r.explicit_hash_key, r.data.clone()))
                .collect();
            assert_eq!(got, want, "{producer}/{}", case.name);

            // Same records in, same bytes out (their single records are framed; ours go raw).
            let ours = aggregate(&case.records);
            if case.records.len() > 1 {
                assert_eq!(
                    hex::encode(&ours.data),
                    hex::encode(&case.bin),
                    "{producer}/{}",
                    case.name
                );
            } else {
                assert_eq!(ours.data, case.records[0].data);
            }
        }
    }
}

#[test]
fn our_vectors_are_current() {
    let dir = testdata().join("ours");
    let update = std::env::var_os("KDS_UPDATE_VECTORS").is_some();
    if update {
        fs::create_dir_all(&dir).unwrap();
    }
    for case in cases("python") {
        let ours = aggregate(&case.records);
        let meta = json!({
            "producer": format!("kds-agg {}", env!("CARGO_PKG_VERSION")),
            "aggregate_partition_key": ours.partition_key,
            "aggregate_explicit_hash_key": ours.explicit_hash_key.map(|h| h.to_string()),
            "records": case.records.iter().map(|r| json!({
                "partition_key": r.partition_key,
                "explicit_hash_key": r.explicit_hash_key.map(|h| h.to_string()),
                "data_hex": hex::encode(&r.data),
            })).collect::<Vec<_>>(),
        });
        let meta = serde_json::to_string_pretty(&meta).unwrap() + "\n";
        let bin_path = dir.join(format!("{}.bin", case.name));
        let json_path = dir.join(format!("{}.json", case.name));
        if update {
            fs::write(&bin_path, &ours.data).unwrap();
            fs::write(&json_path, &meta).unwrap();
        }
        assert_eq!(
            fs::read(&bin_path).unwrap(),
            ours.data,
            "{}: rerun with KDS_UPDATE_VECTORS=1",
            case.name
        );
        assert_eq!(
            fs::read_to_string(&json_path).unwrap(),
            meta,
            "{}",
            case.name
        );
    }
}
