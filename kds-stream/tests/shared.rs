//! Readers that share a stream through a DynamoDB lease table (dynoxide in process), over
//! ferrokinesis: they split the shards, a reader that dies has its shards taken over after its
//! leases expire, a reader that joins gets shards by stealing, children are taken only after
//! their parent's end is in the table, and every row written is delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bytes::Bytes;
use kds_client::Client;
use kds_proto::model::{PutRecordsInput, PutRecordsRequestEntry};
use kds_proto::types::{HashKey, PartitionKey};
use kds_stream::{
    Checkpoint, DynamoDbLeaseStore, LeaseStore, SourceConfig, SourceStats, TableSource,
};
use kds_table::TableDefinition;
use kds_test_support::{Dynoxide, Ferrokinesis, client, create_stream, name, shards, split_shard};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const LEASE: Duration = Duration::from_millis(1500);

fn table(url: &str) -> TableDefinition {
    table_from(url, "TRIM_HORIZON")
}

fn table_from(url: &str, initpos: &str) -> TableDefinition {
    TableDefinition::parse(
        &format!(
            "CREATE TABLE events (id BIGINT) WITH (
               'connector' = 'kinesis', 'stream' = 'shared', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{url}', 'scan.stream.initpos' = '{initpos}',
               'format' = 'json', 'scan.shard.discovery.intervalmillis' = '500',
               'scan.shard.getrecords.intervalmillis' = '50'
             )"
        ),
        &[],
    )
    .unwrap()
}

/// Writes rows `first..first + count`, spread over the whole hash key space.
async fn put(client: &Client, first: u64, count: u64) {
    let entries: Vec<PutRecordsRequestEntry> = (first..first + count)
        .map(|n| {
            let mut entry = PutRecordsRequestEntry::new(
                Bytes::from(format!(r#"{{"id":{n}}}"#)),
                PartitionKey::new("k").unwrap(),
            );
            let hash = u128::MAX / 1000 * u128::from(n % 1000);
            entry.explicit_hash_key = Some(HashKey(hash));
            entry
        })
        .collect();
    for chunk in entries.chunks(500) {
        let mut request = PutRecordsInput::new(chunk.to_vec());
        request.stream_name = Some(name("shared"));
        let output = client.send(&request).await.unwrap();
        assert_eq!(output.failures().count(), 0);
    }
}

/// ferrokinesis with a stream of eight shards holding rows `0..records`, dynoxide, a client
/// and the lease table.
async fn eight_shards(records: u64) -> (Ferrokinesis, Dynoxide, Client, Arc<DynamoDbLeaseStore>) {
    let kinesis = Ferrokinesis::start().await;
    let dynamo = Dynoxide::start().await;
    let client = client(&kinesis.url);
    create_stream(&client, "shared", 8).await;
    put(&client, 0, records).await;
    let dynamodb = client.dynamodb(Some(&dynamo.url)).unwrap();
    let store = DynamoDbLeaseStore::open(dynamodb, "leases").await.unwrap();
    (kinesis, dynamo, client, Arc::new(store))
}

/// What the readers share with the test.
#[derive(Default)]
struct Seen {
    /// Every id delivered, by reader.
    ids: Mutex<Vec<(String, i64)>>,
    /// How many shards each reader reads now.
    held: Mutex<BTreeMap<String, usize>>,
}

/// A reader named `owner` that acknowledges every batch as it comes, until `stop`.
fn reader(
    table: TableDefinition,
    kinesis: Client,
    store: Arc<DynamoDbLeaseStore>,
    owner: &str,
    seen: Arc<Seen>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<SourceStats> {
    let owner = owner.to_owned();
    tokio::spawn(async move {
        let mut config = SourceConfig::default();
        config.owner = owner.clone();
        config.lease_duration = Some(LEASE);
        config.commit_interval = Duration::from_millis(200);
        let mut source = TableSource::open(&table, kinesis, store, config)
            .await
            .unwrap();
        while !*stop.borrow() {
            tokio::select! {
                next = source.next() => {
                    let batch = next.unwrap().unwrap();
                    let ids = batch.rows.column(0).as_primitive::<Int64Type>();
                    seen.ids
                        .lock()
                        .unwrap()
                        .extend(ids.values().iter().map(|&id| (owner.clone(), id)));
                    source.ack(batch.token).unwrap();
                }
                _ = stop.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            seen.held
                .lock()
                .unwrap()
                .insert(owner.clone(), source.open_shards());
        }
        source.close().await.unwrap()
    })
}

/// Waits up to `within` for the readers' shares to satisfy `done`; the shares.
async fn shares_until(
    seen: &Seen,
    within: Duration,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let held = seen.held.lock().unwrap().clone();
        if done(&held) || Instant::now() > deadline {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_shards_survive_a_death_take_in_a_newcomer_and_follow_a_split() {
    let (kinesis, _dynamo, client, store) = eight_shards(2000).await;
    let table = table(&kinesis.url);
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = watch::channel(false);
    let mut readers: HashMap<&str, JoinHandle<SourceStats>> = HashMap::new();
    for owner in ["a", "b", "c"] {
        let handle = reader(
            table.clone(),
            client.clone(),
            Arc::clone(&store),
            owner,
            Arc::clone(&seen),
            stopped.clone(),
        );
        readers.insert(owner, handle);
    }
    // Three readers share eight shards: 2 or 3 each, within a few lease periods.
    let even = |held: &BTreeMap<String, usize>| {
        held.len() == 3 && held.values().all(|n| (2..=3).contains(n))
    };
    let held = shares_until(&seen, LEASE * 6, |h| {
        even(h) && h.values().sum::<usize>() == 8
    })
    .await;
    assert!(even(&held) && held.values().sum::<usize>() == 8, "{held:?}");
    put(&client, 2000, 1000).await;
    // c dies without a word: its leases expire, and a and b take its shards.
    readers.remove("c").unwrap().abort();
    seen.held.lock().unwrap().remove("c");
    let held = shares_until(&seen, LEASE * 6, |h| h.values().sum::<usize>() == 8).await;
    assert_eq!(held.values().sum::<usize>(), 8, "{held:?}");
    assert_eq!(held.values().copied().collect::<Vec<_>>(), [4, 4]);
    // d joins and steals until the shares are 3, 3 and 2.
    put(&client, 3000, 1000).await;
    let handle = reader(
        table.clone(),
        client.clone(),
        Arc::clone(&store),
        "d",
        Arc::clone(&seen),
        stopped.clone(),
    );
    readers.insert("d", handle);
    let settled = |held: &BTreeMap<String, usize>| {
        let mut shares: Vec<usize> = held.values().copied().collect();
        shares.sort_unstable();
        shares == [2, 3, 3]
    };
    let held = shares_until(&seen, LEASE * 8, settled).await;
    assert!(settled(&held), "{held:?}");
    // A split: the parent's readers end it, and its children are taken only once the
    // parent's end is in the lease table.
    let parent = shards(&client, "shared").await.remove(0).shard_id;
    let (low, high) = split_shard(&client, "shared", &parent).await;
    put(&client, 4000, 1000).await;
    let deadline = Instant::now() + LEASE * 10;
    loop {
        let leases = store.list().await.unwrap();
        let lease = |id: &kds_proto::types::ShardId| leases.iter().find(|l| &l.shard_id == id);
        let children_owned = [&low, &high]
            .iter()
            .all(|c| lease(c).is_some_and(|l| l.owner.is_some()));
        if children_owned {
            let parent = lease(&parent).unwrap();
            assert_eq!(parent.checkpoint, Checkpoint::ShardEnd, "{parent:?}");
            break;
        }
        if let Some(parent) = lease(&parent)
            && parent.checkpoint != Checkpoint::ShardEnd
        {
            for child in [&low, &high] {
                assert!(
                    lease(child).is_none_or(|l| l.owner.is_none()),
                    "a child taken before its parent's end: {leases:?}"
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "the children were not taken: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every row written is delivered, however many readers came and went.
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let mut ids: Vec<i64> = seen.ids.lock().unwrap().iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let missing = 5000 - ids.len();
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    let mut stats = Vec::new();
    for (owner, handle) in readers {
        stats.push((owner, handle.await.unwrap()));
    }
    assert_eq!(missing, 0, "rows never delivered");
    let delivered = seen.ids.lock().unwrap().len();
    println!(
        "{delivered} deliveries of 5000 rows ({} repeats); {stats:?}",
        delivered - 5000
    );
    // Closed readers gave their leases up.
    let leases = store.list().await.unwrap();
    assert!(leases.iter().all(|l| l.owner.is_none()), "{leases:?}");
    let taken: u64 = stats.iter().map(|(_, s)| s.leases_taken).sum();
    assert!(taken >= 8 + 2 + 2, "{stats:?}");
}

/// Readers that open together at LATEST agree on where every shard starts: none reads what was
/// written before they opened (a lease created by one while another listed would otherwise
/// start at TRIM_HORIZON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_opening_together_at_latest_skip_what_came_before() {
    let (kinesis, _dynamo, client, store) = eight_shards(1000).await;
    let table = table_from(&kinesis.url, "LATEST");
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<JoinHandle<SourceStats>> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|owner| {
            reader(
                table.clone(),
                client.clone(),
                Arc::clone(&store),
                owner,
                Arc::clone(&seen),
                stopped.clone(),
            )
        })
        .collect();
    // Once every shard has a lease, write more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while store
        .list()
        .await
        .unwrap()
        .iter()
        .filter(|l| l.owner.is_some())
        .count()
        < 8
    {
        assert!(Instant::now() < deadline, "the shards were not taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ferrokinesis's arrival times have whole seconds: the new records must come after the
    // pinned starts.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put(&client, 1000, 1000).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ids: Vec<i64> = seen.ids.lock().unwrap().iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert!(
            ids.iter().all(|&id| id >= 1000),
            "read from before the start: {:?}",
            &ids[..5.min(ids.len())]
        );
        if ids.len() == 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "{} of 1000 rows", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for handle in readers {
        handle.await.unwrap();
    }
}

/// Readers sharing the shards share their enhanced fan-out consumer: a LAZY registration, which
/// the first reader to stop would deregister under the others, is refused before anything is
/// registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_readers_refuse_a_lazy_consumer() {
    let kinesis = Ferrokinesis::start().await;
    let client = client(&kinesis.url);
    create_stream(&client, "shared", 2).await;
    let table = TableDefinition::parse(
        &format!(
            "CREATE TABLE events (id BIGINT) WITH (
               'connector' = 'kinesis', 'stream' = 'shared', 'aws.region' = 'us-east-1',
               'aws.endpoint' = '{}', 'format' = 'json',
               'scan.stream.recordpublisher' = 'EFO', 'scan.stream.efo.consumername' = 'readers'
             )",
            kinesis.url
        ),
        &[],
    )
    .unwrap();
    let mut config = SourceConfig::default();
    config.lease_duration = Some(LEASE);
    let store = Arc::new(kds_stream::MemoryLeaseStore::new());
    let error = TableSource::open(&table, client.clone(), store, config)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), kds_stream::ErrorKind::Definition);
    assert!(error.to_string().contains("EAGER or NONE"), "{error}");
    let mut list = kds_proto::model::ListStreamConsumersInput::new(
        kds_test_support::wait_active(&client, "shared").await,
    );
    list.max_results = Some(10);
    let consumers = client.send(&list).await.unwrap();
    assert!(
        consumers.consumers.unwrap_or_default().is_empty(),
        "nothing registered"
    );
}
