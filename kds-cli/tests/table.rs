//! `kds tail --table` killed with SIGKILL at random points while records are written (a third
//! in KPL aggregates, a split and a merge on the way) and restarted from its state directory ten
//! times, on ferrokinesis and kinesis-local, JSON and CBOR, polling and enhanced fan-out: every
//! record printed, each key's records in order, and a record printed again only when it came
//! after the position the killed run had committed. Also: a LATEST start killed before its first
//! record and restarted reads every record written in between.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kds_agg::{Added, Aggregator, AggregatorConfig, ProducerRecord};
use kds_client::Client;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{HashKey, PartitionKey, SequenceNumber};
use kds_test_support::{
    Ferrokinesis, KinesisLocal, client_builder, create_stream, merge_shards, name, shards,
    split_shard,
};
use serde_json::Value;

const KDS: &str = env!("CARGO_BIN_EXE_kds");

/// Records written per scenario on ferrokinesis.
const RECORDS: u64 = 100_000;

/// Records written per scenario on kinesis-local, which takes about as many seconds as it
/// writes a hundred records.
const KINESIS_LOCAL_RECORDS: u64 = 10_000;

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kds-table-{label}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The table file: ids and keys, and where each row came from.
fn table_file(dir: &Path, stream: &str, endpoint: &str, initpos: &str, extra: &str) -> PathBuf {
    let path = dir.join("table.sql");
    let trust = if endpoint.starts_with("https:") {
        ", 'aws.trust.all.certificates' = 'true'"
    } else {
        ""
    };
    std::fs::write(
        &path,
        format!(
            "CREATE TABLE events (
               id BIGINT,
               k STRING,
               shard VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
               seq VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL,
               sub BIGINT METADATA FROM 'sub-sequence-number' VIRTUAL
             ) WITH (
               'connector' = 'kinesis', 'stream' = '{stream}', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{endpoint}', 'scan.stream.initpos' = '{initpos}',
               'format' = 'json' {trust} {extra}
             )"
        ),
    )
    .unwrap();
    path
}

/// The key of record `n`: 97 keys.
fn key(n: u64) -> String {
    format!("key-{}", n % 97)
}

/// Puts records `first..first + count`; every third batch of 500 as KPL aggregates of one key.
async fn put(client: &Client, stream: &str, first: u64, count: u64) {
    let row = |n: u64| Bytes::from(format!(r#"{{"id":{n},"k":"{}"}}"#, key(n)));
    let ids: Vec<u64> = (first..first + count).collect();
    for (batch, chunk) in ids.chunks(500).enumerate() {
        let mut entries = Vec::new();
        if (first / 500 + batch as u64) % 3 == 2 {
            // Aggregates per key, so that each lands on its key's shard.
            let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for &n in chunk {
                by_key.entry(key(n)).or_default().push(n);
            }
            let now = Instant::now();
            for (key, ids) in by_key {
                let mut aggregator = Aggregator::new(AggregatorConfig::default()).unwrap();
                let mut aggregates = Vec::new();
                for n in ids {
                    if let Added::Ready(a) =
                        aggregator.add(&ProducerRecord::new(key.clone(), row(n)), now)
                    {
                        aggregates.push(a);
                    }
                }
                aggregates.extend(aggregator.flush());
                for aggregate in aggregates {
                    let mut entry = PutRecordsRequestEntry::new(
                        aggregate.data,
                        PartitionKey::new(aggregate.partition_key).unwrap(),
                    );
                    entry.explicit_hash_key = aggregate.explicit_hash_key.map(HashKey);
                    entries.push(entry);
                }
            }
        } else {
            for &n in chunk {
                entries.push(PutRecordsRequestEntry::new(
                    row(n),
                    PartitionKey::new(key(n)).unwrap(),
                ));
            }
        }
        let mut request = PutRecordsInput::new(entries);
        request.stream_name = Some(name(stream));
        let outcome = client
            .put_records_retrying(&request, kds_client::PutOrdering::PerPartitionKey)
            .await
            .unwrap();
        assert_eq!(outcome.failures().count(), 0, "every record is written");
    }
}

/// A row printed by `kds tail --table --output jsonl`.
#[derive(Clone, Debug)]
struct Row {
    id: u64,
    key: String,
    shard: String,
    position: (SequenceNumber, i64),
}

fn rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        // A run killed mid-line leaves a partial last line.
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| Row {
            id: v["id"].as_u64().unwrap(),
            key: v["k"].as_str().unwrap().to_owned(),
            shard: v["shard"].as_str().unwrap().to_owned(),
            position: (
                SequenceNumber::new(v["seq"].as_str().unwrap()).unwrap(),
                v["sub"].as_i64().unwrap_or(0),
            ),
        })
        .collect()
}

/// The committed position of each shard in the lease file: `None` for a shard at its end.
fn committed(state: &Path, stream: &str) -> HashMap<String, Option<(SequenceNumber, i64)>> {
    let file = state.join(format!("events-{stream}-0-of-1.leases.json"));
    let Ok(text) = std::fs::read_to_string(file) else {
        return HashMap::new();
    };
    let document: Value = serde_json::from_str(&text).unwrap();
    document["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|lease| {
            let shard = lease["shard_id"].as_str().unwrap().to_owned();
            let checkpoint = &lease["checkpoint"];
            match checkpoint["at"].as_str().unwrap() {
                "record" => Some((
                    shard,
                    Some((
                        SequenceNumber::new(checkpoint["sequence_number"].as_str().unwrap())
                            .unwrap(),
                        checkpoint["sub_sequence_number"]
                            .as_i64()
                            // A plain record: every row of it.
                            .unwrap_or(i64::MAX),
                    )),
                )),
                "shard-end" => Some((shard, None)),
                _ => None,
            }
        })
        .collect()
}

/// Starts `kds tail --table` writing its rows to `out`, with global `flags` and `tail_flags`.
fn tail(
    table: &Path,
    state: &Path,
    out: &Path,
    flags: &[&str],
    tail_flags: &[&str],
) -> std::process::Child {
    Command::new(KDS)
        .args(flags)
        .arg("tail")
        .args(tail_flags)
        .arg("--table")
        .arg(table)
        .arg("--state-dir")
        .arg(state)
        .args(["--output", "jsonl"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .spawn()
        .unwrap()
}

/// One scenario: the stream is written, resharded and read by runs that are killed.
fn killed_and_restarted(
    client: Client,
    endpoint: &str,
    flags: &[&str],
    extra: &str,
    label: &str,
    records: u64,
    kills: usize,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch(label);
    let stream = format!("killed-{label}");
    runtime.block_on(create_stream(&client, &stream, 4));
    let table = table_file(&dir, &stream, endpoint, "TRIM_HORIZON", extra);
    let state = dir.join("state");
    // The writer: a first part, a split, more, a merge of the split's children, the rest.
    let written = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, stream, written) = (client.clone(), stream.clone(), Arc::clone(&written));
        runtime.spawn(async move {
            let part = records / 4;
            put(&client, &stream, 0, part).await;
            let first = shards(&client, &stream).await.remove(0).shard_id;
            let (low, high) = split_shard(&client, &stream, &first).await;
            put(&client, &stream, part, 2 * part).await;
            merge_shards(&client, &stream, &low, &high).await;
            put(&client, &stream, 3 * part, records - 3 * part).await;
            written.store(true, Ordering::SeqCst);
        })
    };
    let mut runs = Vec::new();
    let mut commits = Vec::new();
    for run in 0..kills {
        let out = dir.join(format!("run-{run}.jsonl"));
        let mut child = tail(&table, &state, &out, flags, &[]);
        std::thread::sleep(Duration::from_millis(fastrand::u64(400..2500)));
        let _ = Command::new("kill")
            .arg("-9")
            .arg(child.id().to_string())
            .status();
        let status = child.wait().unwrap();
        assert!(!status.success(), "run {run} was killed, not finished");
        runs.push(out);
        commits.push(committed(&state, &stream));
    }
    runtime.block_on(writer).unwrap();
    assert!(written.load(Ordering::SeqCst));
    // ferrokinesis dates a new child shard's records up to a second ahead.
    std::thread::sleep(Duration::from_millis(2100));
    let out = dir.join("final.jsonl");
    let mut child = tail(&table, &state, &out, flags, &["--no-follow"]);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the final run did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(out.with_extension("err")).unwrap()
    );
    runs.push(out);

    // Every record, each key's records in order (first deliveries), repeats only after a
    // commit.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut last_of_key: HashMap<String, u64> = HashMap::new();
    let mut repeats = 0;
    for (run, path) in runs.iter().enumerate() {
        for row in rows(path) {
            if !seen.insert(row.id) {
                repeats += 1;
                let before = &commits[run - 1];
                match before.get(&row.shard) {
                    Some(Some(position)) => assert!(
                        &row.position > position,
                        "{label}: run {run} printed {row:?} again, at or before the position \
                         committed by the killed run: {position:?}"
                    ),
                    Some(None) => {
                        panic!("{label}: {row:?} again, from a shard committed at its end")
                    }
                    None => {}
                }
                continue;
            }
            if let Some(previous) = last_of_key.insert(row.key.clone(), row.id) {
                assert!(
                    previous < row.id,
                    "{label}: key {} printed {} after {previous}",
                    row.key,
                    row.id
                );
            }
        }
    }
    let missing: Vec<u64> = (0..records)
        .filter(|n| !seen.contains(n))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "{label}: not printed: {missing:?} …");
    assert_eq!(seen.len() as u64, records, "{label}: nothing else printed");
    eprintln!(
        "{label}: {records} records over {} runs, {repeats} printed again after a kill",
        kills + 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn ferrokinesis() -> (tokio::runtime::Runtime, Ferrokinesis) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let emulator = runtime.block_on(Ferrokinesis::start());
    (runtime, emulator)
}

const EFO: &str =
    ", 'scan.stream.recordpublisher' = 'EFO', 'scan.stream.efo.consumername' = 'tail'";

#[test]
fn killed_runs_lose_nothing_on_ferrokinesis() {
    for (protocol, reader, extra) in [
        ("json", "polling", ""),
        ("cbor", "polling", ""),
        ("json", "efo", EFO),
        ("cbor", "efo", EFO),
    ] {
        // An emulator each: ferrokinesis allows ten shards per account.
        let (_runtime, emulator) = ferrokinesis();
        let client = client_builder(&emulator.url).build().unwrap();
        let label = format!("ferrokinesis-{protocol}-{reader}");
        killed_and_restarted(
            client,
            &emulator.url,
            &["--protocol", protocol],
            extra,
            &label,
            RECORDS,
            10,
        );
    }
}

#[test]
fn killed_runs_lose_nothing_on_kinesis_local() {
    let Some(local) = KinesisLocal::get() else {
        return;
    };
    let client = client_builder(&local.plain_url).build().unwrap();
    // Enhanced fan-out is read in one run, not killed: kinesis-local 0.6.2 keeps a killed
    // reader's subscriptions open (ResourceInUseException for the next one, up to its
    // five-minute session), so restarts there test the emulator, not kds. ferrokinesis covers
    // killed enhanced fan-out readers.
    for (protocol, reader, url, extra, kills) in [
        ("json", "polling", &local.plain_url, "", 10),
        ("cbor", "polling", &local.plain_url, "", 10),
        ("json", "efo", &local.tls_url, EFO, 0),
        ("cbor", "efo", &local.tls_url, EFO, 0),
    ] {
        let label = format!("kinesis-local-{protocol}-{reader}");
        killed_and_restarted(
            client.clone(),
            url,
            &["--protocol", protocol],
            extra,
            &label,
            KINESIS_LOCAL_RECORDS,
            kills,
        );
    }
}

#[test]
fn a_latest_start_killed_before_its_first_record_reads_what_came_in_between() {
    let (runtime, emulator) = ferrokinesis();
    let client = client_builder(&emulator.url).build().unwrap();
    runtime.block_on(create_stream(&client, "latest", 2));
    runtime.block_on(put(&client, "latest", 0, 100));
    // Arrival times are whole seconds on ferrokinesis: LATEST starts a second later.
    std::thread::sleep(Duration::from_millis(1100));
    let dir = scratch("latest");
    let table = table_file(&dir, "latest", &emulator.url, "LATEST", "");
    let state = dir.join("state");
    let first = dir.join("first.jsonl");
    let mut child = tail(&table, &state, &first, &[], &[]);
    // Killed once it has stored its leases, before anything was written.
    let started = Instant::now();
    while leases_missing(&state) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no leases stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .arg("-9")
        .arg(child.id().to_string())
        .status();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    runtime.block_on(put(&client, "latest", 100, 1000));
    std::thread::sleep(Duration::from_millis(1100));
    let second = dir.join("second.jsonl");
    let mut child = tail(&table, &state, &second, &[], &["--no-follow"]);
    assert!(child.wait().unwrap().success());
    let mut ids: Vec<u64> = rows(&first)
        .into_iter()
        .chain(rows(&second))
        .map(|r| r.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (100..1100).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the lease file is still missing.
fn leases_missing(state: &Path) -> bool {
    !state.join("events-latest-0-of-1.leases.json").exists()
}

#[test]
fn ctrl_c_while_the_table_opens_releases_the_consumer_it_registered() {
    use kds_proto::model::ListStreamConsumersInput;
    use kds_test_support::proxy::{Fault, Proxy};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = runtime.block_on(Proxy::start());
    let arn = runtime.block_on(create_stream(&proxy.upstream, "opening", 1));
    // The consumer's state is slow to read: the table is still opening when Ctrl-C comes.
    proxy.script_for(
        "DescribeStreamConsumer",
        (0..6).map(|_| Fault::Stall(Duration::from_millis(1500))),
    );
    let dir = scratch("opening");
    let table = table_file(&dir, "opening", &proxy.url, "TRIM_HORIZON", EFO);
    let mut child = Command::new(KDS)
        .args(["tail", "--table"])
        .arg(&table)
        .args(["--output", "jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !proxy
        .requests()
        .iter()
        .any(|r| r == "RegisterStreamConsumer")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no consumer registered: {:?}",
            proxy.requests()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "kds did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let consumers = runtime.block_on(async {
        proxy
            .upstream
            .send(&ListStreamConsumersInput::new(arn))
            .await
            .unwrap()
            .consumers
            .unwrap_or_default()
    });
    assert!(
        consumers.is_empty(),
        "the consumer kds registered is still there: {consumers:?} ({stderr})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
