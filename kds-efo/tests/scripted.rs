//! ShardReader and StreamReader against the scripted HTTP/2 server of kds-test-support: each
//! test says what every subscription answers, and checks exactly which records come out and
//! where each resubscription starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kds_client::{HttpVersion, RetryPolicy, StreamId};
use kds_efo::{ErrorKind, ReadBatches, ReaderConfig, ShardReader, StreamReader};
use kds_proto::model::{HashKeyRange, SequenceNumberRange, Shard, StartingPosition};
use kds_proto::types::{HashKey, ShardId, ShardIteratorType, StreamName, Timestamp};
use kds_test_support::scripted::{Answer, Script, Step, consumer, sequence};

/// Fast retries and timeouts.
fn config(configure: impl FnOnce(&mut ReaderConfig)) -> ReaderConfig {
    let mut config = ReaderConfig::default();
    config.inactivity = Duration::from_millis(300);
    config.resource_in_use_wait = Duration::from_millis(200);
    config.retry = RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
        exponential_constant: 2.0,
    };
    configure(&mut config);
    config
}

/// Test readers of a [`Script`]: fast retries and timeouts.
trait Readers {
    fn reader(&self) -> ShardReader;
    fn reader_with(&self, configure: impl FnOnce(&mut ReaderConfig)) -> ShardReader;
    fn stream_reader(&self, shards: u64, configure: impl FnOnce(&mut ReaderConfig))
    -> StreamReader;
}

impl Readers for Script {
    fn reader(&self) -> ShardReader {
        self.reader_with(|_| {})
    }

    /// A StreamReader of `shards` shards (`shardId-000000000000` on) from TRIM_HORIZON.
    fn stream_reader(
        &self,
        shards: u64,
        configure: impl FnOnce(&mut ReaderConfig),
    ) -> StreamReader {
        let shards: Vec<Shard> = (0..shards)
            .map(|n| {
                Shard::new(
                    ShardId::new(format!("shardId-{n:012}")).unwrap(),
                    HashKeyRange::new(HashKey::MIN, HashKey::MAX),
                    SequenceNumberRange::new(sequence(1)),
                )
            })
            .collect();
        StreamReader::new(
            self.client(),
            StreamId::Name(StreamName::new("s").unwrap()),
            consumer(),
            &shards,
            &StartingPosition::new(ShardIteratorType::TrimHorizon),
            config(configure),
        )
    }

    fn reader_with(&self, configure: impl FnOnce(&mut ReaderConfig)) -> ShardReader {
        ShardReader::new(
            self.client(),
            consumer(),
            ShardId::new("shardId-000000000000").unwrap(),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            config(configure),
        )
    }
}

/// Batches of any shard until `count` records came (at most ten seconds), as sequence
/// numbers in the order they came.
async fn read_stream(reader: &mut StreamReader, count: usize) -> Vec<u64> {
    let mut numbers = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while numbers.len() < count {
            let batch = reader.next_batch().await.unwrap().unwrap();
            numbers.extend(
                batch
                    .records
                    .iter()
                    .map(|r| r.sequence_number.as_str().parse::<u64>().unwrap()),
            );
        }
    })
    .await
    .expect("the records come");
    numbers
}

/// Every batch until the shard ends or `count` records came, as sequence numbers.
async fn read(reader: &mut ShardReader, count: usize) -> Vec<u64> {
    let mut numbers = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while numbers.len() < count {
            let Some(batch) = reader.next_batch().await.unwrap() else {
                break;
            };
            numbers.extend(
                batch
                    .records
                    .iter()
                    .map(|r| r.sequence_number.as_str().parse::<u64>().unwrap()),
            );
        }
    })
    .await
    .expect("the reader finishes");
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_ends_resubscribe_after_the_last_record_and_the_shard_ends_with_children() {
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Event(vec![1, 2, 3], Some(3))]),
        Answer::Stream(vec![
            Step::Event(vec![4, 5], Some(5)),
            Step::Event(vec![], Some(7)),
        ]),
        Answer::Stream(vec![Step::Event(vec![8], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3, 4, 5, 8]);
    // TRIM_HORIZON, after record 3, then after the continuation of an event without records.
    assert_eq!(script.starts(), [None, Some(3), Some(7)]);
    let children = reader.children().unwrap();
    assert_eq!(children[0].shard_id.as_str(), "shardId-000000000002");
    assert!(reader.next_batch().await.unwrap().is_none());
    assert_eq!(script.unused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_in_use_waits_then_resubscribes_at_the_same_position() {
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Event(vec![1], Some(1))]),
        Answer::Refuse("ResourceInUseException"),
        Answer::Stream(vec![Step::Event(vec![2], None)]),
    ])
    .await;
    let mut reader = script.reader();
    let started = Instant::now();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2]);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the wait after ResourceInUse"
    );
    assert_eq!(script.starts(), [None, Some(1), Some(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_corrupt_frames_and_silence_resubscribe_where_reading_stopped() {
    let script = Script::start(vec![
        // A retryable exception after two records.
        Answer::Stream(vec![
            Step::Event(vec![1, 2], Some(2)),
            Step::Exception("InternalFailure"),
        ]),
        // A corrupt frame after one more.
        Answer::Stream(vec![Step::Event(vec![3], Some(3)), Step::Corrupt]),
        // Silence after one more: the watchdog.
        Answer::Stream(vec![Step::Event(vec![4], Some(4)), Step::Silence]),
        // The service resumes too early: 3 and 4 again, then 5; the shard ends.
        Answer::Stream(vec![Step::Event(vec![3, 4, 5], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3, 4, 5]);
    assert_eq!(script.starts(), [None, Some(2), Some(3), Some(4)]);
    assert_eq!(reader.repeats_dropped(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_exceptions_end_reading_with_the_service_error() {
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Event(vec![1], Some(1)),
        Step::Exception("ResourceNotFoundException"),
    ])])
    .await;
    let mut reader = script.reader();
    assert_eq!(reader.next_batch().await.unwrap().unwrap().records.len(), 1);
    let err = reader.next_batch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Service, "{err}");
    assert_eq!(
        err.service_error().map(|e| e.code()),
        Some("ResourceNotFoundException")
    );
    // Retryable failures give up after the configured retries, with the last error.
    let script = Script::start(vec![Answer::Refuse("InternalFailure"); 4]).await;
    let err = script.reader().next_batch().await.unwrap_err();
    assert_eq!(
        err.service_error().map(|e| e.code()),
        Some("InternalFailure")
    );
    assert_eq!(script.starts().len(), 4, "the first try and three retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaway_lets_the_stream_finish_and_the_next_subscription_use_a_new_connection() {
    let script = Script::start(vec![
        Answer::Stream(vec![
            Step::Event(vec![1], Some(1)),
            Step::GoAway,
            Step::Event(vec![2, 3], Some(3)),
        ]),
        Answer::Stream(vec![Step::Event(vec![4], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3, 4]);
    assert_eq!(script.starts(), [None, Some(3)]);
    assert_eq!(script.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_holds_back_the_server() {
    // 200 events of 10 records of 10 KB: 20 MB in all.
    let steps = (0..200)
        .map(|e| Step::Big(e * 10 + 1, 10, 10_000))
        .collect();
    let script = Script::start(vec![Answer::Stream(steps)]).await;
    let mut reader = script.reader();
    let first = reader.next_batch().await.unwrap().unwrap();
    assert_eq!(first.records.len(), 10);
    // The reader stops for a while: HTTP/2 flow control stops the server well short of 20 MB
    // (hyper's stream window is 2 MiB).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let taken = script.taken();
    assert!(taken < 4 * 1024 * 1024, "{taken} bytes left the server");
    // Reading on gets every record, once.
    let rest = read(&mut reader, 1990).await;
    assert_eq!(rest, (11..=2000).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_time_ends_an_open_shard_when_caught_up_or_at_a_later_record() {
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Event(vec![1, 2], Some(2)),
        // Behind: not the tip yet.
        Step::Behind(2, 5_000),
        Step::Event(vec![3], Some(3)),
        Step::Behind(3, 0),
        Step::Event(vec![4], Some(4)),
    ])])
    .await;
    let end = |millis| {
        move |config: &mut ReaderConfig| config.end_at = Some(Timestamp::from_millis(millis))
    };
    let mut reader = script.reader_with(end(100_000));
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3]);
    assert!(
        reader.children().is_none(),
        "an open shard names no children"
    );
    assert!(reader.next_batch().await.unwrap().is_none());
    assert_eq!(script.starts(), [None]);

    // Records that arrived after the end time are not delivered, even from a closed shard
    // (its children are not read either).
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Event(vec![1, 2], Some(2)),
        Step::Event(vec![3, 4], None),
    ])])
    .await;
    let mut reader = script.reader_with(end(3_500));
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3]);
    assert!(reader.children().is_none());

    // Without it, the same events are read through.
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Event(vec![1], Some(1)),
        Step::Behind(1, 0),
        Step::Event(vec![2], None),
    ])])
    .await;
    assert_eq!(read(&mut script.reader(), usize::MAX).await, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_beyond_a_connections_stream_limit_get_connections_of_their_own() {
    const SHARDS: u64 = 5;
    // Every subscription gets one record and then stays open, silent: on one connection
    // that allows two streams, the third subscription would wait for minutes.
    let script = Script::start_limited(
        (1..=SHARDS)
            .map(|n| Answer::Stream(vec![Step::Event(vec![n], Some(n)), Step::Silence]))
            .collect(),
        2,
    )
    .await;
    let mut reader = script.stream_reader(SHARDS, |config| {
        config.inactivity = Duration::from_secs(30);
        config.subscriptions_per_connection = 2;
    });
    let mut read = read_stream(&mut reader, SHARDS as usize).await;
    read.sort_unstable();
    assert_eq!(read, (1..=SHARDS).collect::<Vec<_>>());
    assert_eq!(reader.connections(), 3);
    assert_eq!(script.connections(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_beyond_the_limit_wait_for_one_to_end() {
    // Every subscription gets one record and then stays open, silent.
    let script = Script::start(
        (1..=3)
            .map(|n| Answer::Stream(vec![Step::Event(vec![n], Some(n)), Step::Silence]))
            .collect(),
    )
    .await;
    let mut reader = script.stream_reader(3, |config| {
        config.inactivity = Duration::from_secs(30);
        config.max_subscriptions = 2;
    });
    let mut read = read_stream(&mut reader, 2).await;
    // The third shard waits for one of the two open subscriptions to end.
    let third = tokio::time::timeout(Duration::from_millis(1500), reader.next_batch()).await;
    assert!(third.is_err(), "a third subscription was opened: {third:?}");
    read.sort_unstable();
    assert_eq!(read, [1, 2]);
    assert_eq!(script.starts().len(), 2, "subscriptions requested");
    assert_eq!(script.unused(), 1);
}

/// A TCP relay to `target` whose open connections can be frozen: from then on they forward
/// nothing in either direction (a peer gone silent: PINGs go unanswered), while connections
/// made later are relayed as usual.
struct Relay {
    url: String,
    accepted: Arc<AtomicUsize>,
    /// Connections numbered below this are frozen.
    frozen_below: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let frozen_below = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (frozen, counted) = (Arc::clone(&frozen_below), Arc::clone(&accepted));
        tokio::spawn(async move {
            for id in 0.. {
                let (client, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (from, to) in [(client_read, server_write), (server_read, client_write)] {
                    tokio::spawn(relay(from, to, id, Arc::clone(&frozen)));
                }
            }
        });
        Self {
            url,
            accepted,
            frozen_below,
        }
    }

    /// Freezes every connection made so far.
    fn freeze_open_connections(&self) {
        self.frozen_below
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    id: usize,
    frozen_below: Arc<AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if id < frozen_below.load(Ordering::SeqCst) {
            // Hold both sockets open and say nothing, for good.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_turn_a_dead_connection_into_a_resubscription() {
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Event(vec![1], Some(1)), Step::Silence]),
        Answer::Stream(vec![Step::Event(vec![2], None)]),
    ])
    .await;
    let relay = Relay::start(&script.url).await;
    let client = kds_test_support::client_builder(&relay.url)
        .http_version(HttpVersion::Http2)
        .http2_keep_alive(Duration::from_millis(200), Duration::from_millis(200))
        .build()
        .unwrap();
    // The inactivity watchdog is far off: only the pings can notice the dead connection.
    let config = config(|config| config.inactivity = Duration::from_secs(60));
    let mut reader = ShardReader::new(
        client,
        consumer(),
        ShardId::new("shardId-000000000000").unwrap(),
        StartingPosition::new(ShardIteratorType::TrimHorizon),
        config,
    );
    assert_eq!(read(&mut reader, 1).await, [1]);
    relay.freeze_open_connections();
    let started = Instant::now();
    assert_eq!(read(&mut reader, usize::MAX).await, [2]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the dead connection was noticed after {:?}",
        started.elapsed()
    );
    assert_eq!(script.starts(), [None, Some(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_is_also_a_stream_of_batches_that_ends_after_an_error() {
    use futures_core::Stream;
    async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
    }
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Event(vec![1, 2], Some(2)),
        Step::Event(vec![3], None),
    ])])
    .await;
    let mut batches = script.reader().into_stream();
    let mut numbers = Vec::new();
    while let Some(batch) = next(&mut batches).await {
        numbers.extend(
            batch
                .unwrap()
                .records
                .iter()
                .map(|r| r.sequence_number.as_str().parse::<u64>().unwrap()),
        );
    }
    assert_eq!(numbers, [1, 2, 3]);
    assert!(
        next(&mut batches).await.is_none(),
        "an ended stream stays ended"
    );

    // Nothing scripted: the server answers ResourceNotFoundException, a terminal error.
    let script = Script::start(Vec::new()).await;
    let mut batches = script.reader().into_stream();
    let error = next(&mut batches).await.unwrap().unwrap_err();
    assert_eq!(
        error.service_error().map(|e| e.code()),
        Some("ResourceNotFoundException")
    );
    assert!(next(&mut batches).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_shard_named_on_every_event_ends_at_its_first_event_without_records() {
    // ferrokinesis names the children on every event of a closed shard, with a continuation.
    let script = Script::start(vec![Answer::Stream(vec![
        Step::Closed(vec![1, 2], 2),
        Step::Closed(vec![3], 3),
        Step::Closed(vec![], 3),
        Step::Silence,
    ])])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3]);
    let children = reader.children().expect("the shard ended");
    assert_eq!(children[0].shard_id.as_str(), "shardId-000000000002");
    assert_eq!(script.starts(), [None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reader_counts_the_repeats_its_shards_dropped() {
    // The second subscription starts too early: records 1 and 2 come again.
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Event(vec![1, 2], Some(2))]),
        Answer::Stream(vec![Step::Event(vec![1, 2, 3], Some(3)), Step::Silence]),
    ])
    .await;
    let mut reader = script.stream_reader(1, |config| config.inactivity = Duration::from_secs(30));
    let read = read_stream(&mut reader, 3).await;
    assert_eq!(read, [1, 2, 3]);
    assert_eq!(reader.repeats_dropped(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_without_continuation_on_an_open_shard_resubscribes_instead_of_ending_it() {
    let script = Script::start(vec![
        Answer::Stream(vec![
            Step::Event(vec![1, 2], Some(2)),
            Step::Broken(vec![3]),
        ]),
        // The service resumes too early once more: 3 again.
        Answer::Stream(vec![Step::Event(vec![3, 4], Some(4)), Step::Broken(vec![])]),
        Answer::Stream(vec![Step::Event(vec![5], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2, 3, 4, 5]);
    // Each break resubscribes after the last record delivered.
    assert_eq!(script.starts(), [None, Some(3), Some(4)]);
    assert_eq!(reader.protocol_breaks(), 2);
    assert_eq!(reader.repeats_dropped(), 1);
    assert_eq!(
        reader.children().unwrap()[0].shard_id.as_str(),
        "shardId-000000000002"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_keep_breaking_the_protocol_give_up_like_errors() {
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Broken(vec![1])]),
        Answer::Stream(vec![Step::Broken(vec![])]),
        Answer::Stream(vec![Step::Broken(vec![])]),
        Answer::Stream(vec![Step::Broken(vec![])]),
        Answer::Stream(vec![Step::Broken(vec![])]),
        Answer::Stream(vec![Step::Event(vec![2], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(
        read(&mut reader, 1).await,
        [1],
        "records of a break are delivered"
    );
    let err = reader.next_batch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("no continuation"), "{err}");
    // The first subscription and three retries, each after the last record.
    assert_eq!(script.starts(), [None, Some(1), Some(1), Some(1)]);
    // Reading again goes on from the same position.
    assert_eq!(read(&mut reader, usize::MAX).await, [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_without_any_event_back_off_and_give_up_like_errors() {
    // A server that answers 200 with an empty body: no unbounded request rate.
    let script = Script::start(vec![Answer::Stream(Vec::new()); 10]).await;
    let mut reader = script.reader();
    let err = tokio::time::timeout(Duration::from_secs(10), reader.next_batch())
        .await
        .expect("the reader gives up")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("without any event"), "{err}");
    assert_eq!(script.starts().len(), 4, "the first try and three retries");
    assert_eq!(reader.empty_subscriptions(), 4);
    assert_eq!(script.unused(), 6);

    // One empty subscription among good ones is counted and read past.
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Event(vec![1], Some(1))]),
        Answer::Stream(Vec::new()),
        Answer::Stream(vec![Step::Event(vec![2], None)]),
    ])
    .await;
    let mut reader = script.reader();
    assert_eq!(read(&mut reader, usize::MAX).await, [1, 2]);
    assert_eq!(reader.empty_subscriptions(), 1);
    assert_eq!(script.starts(), [None, Some(1), Some(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reader_counts_protocol_breaks_and_reads_on() {
    let script = Script::start(vec![
        Answer::Stream(vec![Step::Broken(vec![1])]),
        Answer::Stream(Vec::new()),
        Answer::Stream(vec![Step::Event(vec![2], None)]),
    ])
    .await;
    let mut reader = script.stream_reader(1, |_| {});
    assert_eq!(read_stream(&mut reader, 2).await, [1, 2]);
    assert_eq!(reader.protocol_breaks(), 1);
    assert_eq!(reader.empty_subscriptions(), 1);
}
