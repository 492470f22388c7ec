//! `kds tail --table --group`: worker processes that share a stream of eight shards through a
//! DynamoDB lease table (dynoxide in process, over ferrokinesis). Three share the shards within
//! a lease period; one is killed with SIGKILL and its shards are taken over once its leases
//! expire, not before; a fourth joins and gets shards by stealing; a split's children are taken
//! only after the parent's end is in the table; every record written before and during the run
//! is printed, and committed once the workers stop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kds_client::Client;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{HashKey, PartitionKey, SequenceNumber};
use kds_stream::{Checkpoint, DynamoDbLeaseStore, Lease, LeaseStore};
use kds_test_support::{Dynoxide, Ferrokinesis, client, create_stream, name, shards, split_shard};
use serde_json::Value;

const KDS: &str = env!("CARGO_BIN_EXE_kds");

/// The workers' group, and their lease table.
const GROUP: &str = "readers";

/// The workers' lease duration.
const LEASE: Duration = Duration::from_secs(3);

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kds-group-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes records `first..first + count`, spread over the hash key space.
async fn put(client: &Client, first: u64, count: u64) {
    let entries: Vec<PutRecordsRequestEntry> = (first..first + count)
        .map(|n| {
            let mut entry = PutRecordsRequestEntry::new(
                Bytes::from(format!(r#"{{"id":{n}}}"#)),
                PartitionKey::new("k").unwrap(),
            );
            entry.explicit_hash_key = Some(HashKey(u128::MAX / 997 * u128::from(n % 997)));
            entry
        })
        .collect();
    for chunk in entries.chunks(500) {
        let mut request = PutRecordsInput::new(chunk.to_vec());
        request.stream_name = Some(name("group"));
        let output = client.send(&request).await.unwrap();
        assert_eq!(output.failures().count(), 0);
    }
}

/// Starts a worker of the group printing its rows to `dir/<label>.jsonl`.
fn worker(dir: &Path, table: &Path, dynamodb: &str, label: &str) -> Child {
    let out = dir.join(format!("{label}.jsonl"));
    Command::new(KDS)
        .args(["tail", "--table"])
        .arg(table)
        .args(["--group", GROUP, "--dynamodb-endpoint", dynamodb])
        .args(["--lease-duration", &LEASE.as_secs_f64().to_string()])
        .args(["--output", "jsonl"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .spawn()
        .unwrap()
}

/// A printed row: id, shard and sequence number.
fn rows(path: &Path) -> Vec<(u64, String, SequenceNumber)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        // A killed worker may leave half a line.
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|v| {
            (
                v["id"].as_u64().unwrap(),
                v["shard"].as_str().unwrap().to_owned(),
                SequenceNumber::new(v["seq"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The shards with work each worker holds (the owner names start with the worker's pid).
fn shares(leases: &[Lease], pids: &HashMap<&str, u32>) -> BTreeMap<String, usize> {
    let mut shares = BTreeMap::new();
    for lease in leases {
        let Some(owner) = &lease.owner else { continue };
        if lease.checkpoint.is_shard_end() {
            continue;
        }
        let worker = pids
            .iter()
            .find(|(_, pid)| owner.starts_with(&format!("{GROUP}-kds-{pid}-")))
            .map_or_else(|| owner.clone(), |(label, _)| (*label).to_owned());
        *shares.entry(worker).or_default() += 1;
    }
    shares
}

#[test]
fn workers_share_the_shards_survive_a_kill_take_in_a_newcomer_and_follow_a_split() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kinesis = runtime.block_on(Ferrokinesis::start());
    let dynamo = runtime.block_on(Dynoxide::start());
    let client = client(&kinesis.url);
    runtime.block_on(create_stream(&client, "group", 8));
    let store = runtime
        .block_on(DynamoDbLeaseStore::open(
            client.dynamodb(Some(&dynamo.url)).unwrap(),
            GROUP,
        ))
        .unwrap();
    let leases = || runtime.block_on(store.list()).unwrap();
    let dir = scratch();
    let table = dir.join("table.sql");
    std::fs::write(
        &table,
        format!(
            "CREATE TABLE events (
               id BIGINT,
               shard VARCHAR(128) NOT NULL METADATA FROM 'shard-id' VIRTUAL,
               seq VARCHAR(128) NOT NULL METADATA FROM 'sequence-number' VIRTUAL
             ) WITH (
               'connector' = 'kinesis', 'stream' = 'group', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{}', 'scan.stream.initpos' = 'TRIM_HORIZON', 'format' = 'json',
               'scan.shard.discovery.intervalmillis' = '1000'
             )",
            kinesis.url
        ),
    )
    .unwrap();
    runtime.block_on(put(&client, 0, 20_000));
    let mut workers: HashMap<&str, Child> = HashMap::new();
    for label in ["a", "b", "c"] {
        workers.insert(label, worker(&dir, &table, &dynamo.url, label));
    }
    let started = Instant::now();
    let pids: HashMap<&str, u32> = workers.iter().map(|(l, c)| (*l, c.id())).collect();
    let wait_for =
        |within: Duration, what: &str, done: &dyn Fn(&BTreeMap<String, usize>) -> bool| {
            let deadline = Instant::now() + within;
            loop {
                let shares = shares(&leases(), &pids);
                if done(&shares) {
                    return shares;
                }
                assert!(Instant::now() < deadline, "{what}: {shares:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        };
    // Three workers, eight shards: 2 or 3 each within a lease period (and the time the
    // processes take to start).
    let even = |shares: &BTreeMap<String, usize>| {
        shares.len() == 3
            && shares.values().sum::<usize>() == 8
            && shares.values().all(|n| (2..=3).contains(n))
    };
    wait_for(LEASE + Duration::from_secs(1), "three workers share", &even);
    eprintln!("three workers balanced after {:?}", started.elapsed());
    // c is killed: its shards stay its own until its leases expire, then a and b take them.
    let writer = runtime.spawn({
        let client = client.clone();
        async move { put(&client, 20_000, 10_000).await }
    });
    let mut c = workers.remove("c").unwrap();
    let held_by_c = shares(&leases(), &pids)["c"];
    let _ = Command::new("kill")
        .args(["-9", &c.id().to_string()])
        .status();
    c.wait().unwrap();
    let killed = Instant::now();
    std::thread::sleep(LEASE / 2);
    assert_eq!(
        shares(&leases(), &pids).get("c"),
        Some(&held_by_c),
        "taken before expiry"
    );
    let shares_after = wait_for(LEASE * 3, "c's shards taken over", &|s| {
        !s.contains_key("c") && s.values().sum::<usize>() == 8
    });
    eprintln!(
        "c's {held_by_c} shards taken over {:?} after the kill: {shares_after:?}",
        killed.elapsed()
    );
    runtime.block_on(writer).unwrap();
    // d joins and steals one lease at a time until the shares are 3, 3 and 2.
    workers.insert("d", worker(&dir, &table, &dynamo.url, "d"));
    let mut pids = pids;
    pids.insert("d", workers["d"].id());
    let settled = |s: &BTreeMap<String, usize>| {
        let mut counts: Vec<usize> = s.values().copied().collect();
        counts.sort_unstable();
        s.contains_key("d") && counts == [2, 3, 3]
    };
    let deadline = Instant::now() + LEASE * 3;
    while !settled(&shares(&leases(), &pids)) {
        assert!(Instant::now() < deadline, "{:?}", shares(&leases(), &pids));
        std::thread::sleep(Duration::from_millis(50));
    }
    // A split during the run: the children are taken only after the parent's end is in the
    // lease table.
    let parent = runtime
        .block_on(shards(&client, "group"))
        .remove(0)
        .shard_id;
    let (low, high) = runtime.block_on(split_shard(&client, "group", &parent));
    runtime.block_on(put(&client, 30_000, 10_000));
    let deadline = Instant::now() + LEASE * 4;
    loop {
        let leases = leases();
        let lease = |id: &kds_proto::types::ShardId| leases.iter().find(|l| &l.shard_id == id);
        let parent_ended = lease(&parent).is_some_and(|l| l.checkpoint == Checkpoint::ShardEnd);
        let children_owned = [&low, &high]
            .iter()
            .all(|c| lease(c).is_some_and(|l| l.owner.is_some()));
        if !parent_ended {
            for child in [&low, &high] {
                assert!(
                    lease(child).is_none_or(|l| l.owner.is_none()),
                    "a child taken before its parent's end: {leases:?}"
                );
            }
        }
        if parent_ended && children_owned {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the children were not taken: {leases:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every record is printed by some worker.
    let outputs: Vec<PathBuf> = ["a", "b", "c", "d"]
        .iter()
        .map(|label| dir.join(format!("{label}.jsonl")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let printed = loop {
        let printed: Vec<(u64, String, SequenceNumber)> =
            outputs.iter().flat_map(|path| rows(path)).collect();
        let ids: HashSet<u64> = printed.iter().map(|(id, ..)| *id).collect();
        if ids.len() == 40_000 {
            break printed;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 40000 records printed",
            ids.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Ctrl-C: the workers commit what they printed and give their leases up.
    for (label, mut child) in workers {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        let err = std::fs::read_to_string(dir.join(format!("{label}.err"))).unwrap();
        assert!(status.success(), "{label}: {status} {err}");
    }
    let printed_after: Vec<(u64, String, SequenceNumber)> =
        outputs.iter().flat_map(|path| rows(path)).collect();
    let ids: HashSet<u64> = printed_after.iter().map(|(id, ..)| *id).collect();
    assert_eq!(ids.len(), 40_000, "nothing else printed");
    assert!(ids.iter().all(|id| *id < 40_000));
    eprintln!(
        "{} rows printed for 40000 records ({} repeats); {} when every record was in",
        printed_after.len(),
        printed_after.len() - 40_000,
        printed.len()
    );
    // Committed: each shard's lease is at its last printed record (or its end), owned by
    // nobody.
    let mut last: HashMap<String, SequenceNumber> = HashMap::new();
    for (_, shard, seq) in printed_after {
        let entry = last.entry(shard).or_insert_with(|| seq.clone());
        if seq > *entry {
            *entry = seq;
        }
    }
    for lease in leases() {
        assert_eq!(lease.owner, None, "{lease:?}");
        match &lease.checkpoint {
            Checkpoint::ShardEnd => assert_eq!(lease.shard_id, parent),
            Checkpoint::Record {
                sequence_number, ..
            } => assert_eq!(
                Some(sequence_number),
                last.get(lease.shard_id.as_str()),
                "{lease:?}"
            ),
            other => panic!("{} committed at {other:?}", lease.shard_id.as_str()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A table that declares `scan.lease.table` shares its shards: the flags that read a table alone
/// are refused with a usage error naming the option.
#[test]
fn a_table_with_a_lease_table_refuses_the_flags_of_a_lone_reader() {
    let dir = scratch();
    let table = dir.join("table.sql");
    std::fs::write(
        &table,
        "CREATE TABLE events (id BIGINT) WITH (
           'connector' = 'kinesis', 'stream' = 'group', 'aws.region' = 'us-east-1',
           'aws.endpoint' = 'http://127.0.0.1:9', 'format' = 'json',
           'scan.lease.table' = 'readers'
         )",
    )
    .unwrap();
    for flags in [
        &["--state-dir", dir.to_str().unwrap()][..],
        &["--subtask", "0/2"],
        &["--no-follow"],
    ] {
        let output = Command::new(KDS)
            .args(["tail", "--table"])
            .arg(&table)
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains("`scan.lease.table`"), "{flags:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
