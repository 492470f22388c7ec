//! ShardReader against a scripted HTTP/2 server built from kds-proto's event-stream encoder:
//! each test says what every subscription answers, and checks exactly which records come out and
//! where each resubscription starts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_client::credentials::Credentials;
use kds_client::{Client, HttpVersion, Protocol, RetryPolicy, StreamId};
use kds_efo::{ErrorKind, ReaderConfig, ShardReader, StreamReader};
use kds_proto::Shape;
use kds_proto::eventstream::{HeaderValue, Message};
use kds_proto::model::{
    ChildShard, HashKeyRange, Record, SequenceNumberRange, Shard, StartingPosition,
    SubscribeToShardEvent, SubscribeToShardInput,
};
use kds_proto::types::{
    ConsumerArn, HashKey, PartitionKey, SequenceNumber, ShardId, ShardIteratorType, StreamName,
    Timestamp,
};

/// One step of a subscription's answer.
#[derive(Clone, Debug)]
enum Step {
    /// An event with records of these sequence numbers and this continuation (`None`: the last
    /// event of a closed shard, naming a child shard).
    Event(Vec<u64>, Option<u64>),
    /// An exception message with this code; the stream ends.
    Exception(&'static str),
    /// A frame whose checksum is wrong.
    Corrupt,
    /// An event of `count` records of `size` bytes from sequence number `first` on.
    Big(u64, u64, usize),
    /// An event without records with this continuation, this many milliseconds behind the tip.
    Behind(u64, i64),
    /// An event of a closed shard as ferrokinesis sends them: records, a continuation, and
    /// the child shard, on every event.
    Closed(Vec<u64>, u64),
    /// Nothing more, and the stream stays open.
    Silence,
    /// The server closes the connection gracefully (HTTP/2 GOAWAY): this stream goes on, new
    /// ones need another connection.
    GoAway,
}

/// What one SubscribeToShard request gets.
#[derive(Clone, Debug)]
enum Answer {
    /// An HTTP 400 with this error code.
    Refuse(&'static str),
    /// A 200 and an event stream of these steps, then the end of the body (unless silent).
    Stream(Vec<Step>),
}

/// A response body fed from a channel, counting the bytes hyper takes from it (what the HTTP/2
/// flow control let through).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>, Arc<AtomicUsize>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let taken = Arc::clone(&self.1);
        self.0.poll_recv(cx).map(|chunk| {
            chunk.map(|c| {
                taken.fetch_add(c.len(), Ordering::SeqCst);
                Ok(Frame::data(c))
            })
        })
    }
}

fn consumer() -> ConsumerArn {
    ConsumerArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1").unwrap()
}

fn sequence(n: u64) -> SequenceNumber {
    SequenceNumber::new(n.to_string()).unwrap()
}

fn encode_event(event: &SubscribeToShardEvent, out: &mut Vec<u8>) {
    Message::new(event.encode_body(Protocol::Json))
        .with_header(":message-type", HeaderValue::String("event".into()))
        .with_header(
            ":event-type",
            HeaderValue::String("SubscribeToShardEvent".into()),
        )
        .with_header(
            ":content-type",
            HeaderValue::String("application/json".into()),
        )
        .encode(out)
        .unwrap();
}

/// An event (0 ms behind) with records of these sequence numbers; record n arrived n seconds
/// after the epoch.
fn event_of(numbers: &[u64]) -> SubscribeToShardEvent {
    let records = numbers
        .iter()
        .map(|&n| {
            let mut record = Record::new(
                sequence(n),
                Bytes::from(format!("record-{n}")),
                PartitionKey::new("k").unwrap(),
            );
            record.approximate_arrival_timestamp =
                Some(Timestamp::from_millis(i64::try_from(n).unwrap() * 1000));
            record
        })
        .collect();
    SubscribeToShardEvent::new(records, 0)
}

/// The child shard a closed shard's last event names.
fn child() -> ChildShard {
    ChildShard::new(
        ShardId::new("shardId-000000000002").unwrap(),
        vec![ShardId::new("shardId-000000000000").unwrap()],
        HashKeyRange::new(HashKey::MIN, HashKey::MAX),
    )
}

fn frame(step: &Step) -> Vec<u8> {
    let mut out = Vec::new();
    match step {
        Step::Behind(continuation, millis) => {
            let mut event = SubscribeToShardEvent::new(Vec::new(), *millis);
            event.continuation_sequence_number = Some(sequence(*continuation));
            encode_event(&event, &mut out);
        }
        Step::Closed(numbers, continuation) => {
            let mut event = event_of(numbers);
            event.continuation_sequence_number = Some(sequence(*continuation));
            event.child_shards = Some(vec![child()]);
            encode_event(&event, &mut out);
        }
        Step::Event(numbers, continuation) => {
            let mut event = event_of(numbers);
            event.continuation_sequence_number = continuation.map(sequence);
            if continuation.is_none() {
                event.child_shards = Some(vec![child()]);
            }
            encode_event(&event, &mut out);
        }
        Step::Exception(code) => {
            Message::new(Bytes::from(format!(r#"{{"message":"scripted {code}"}}"#)))
                .with_header(":message-type", HeaderValue::String("exception".into()))
                .with_header(":exception-type", HeaderValue::String((*code).into()))
                .with_header(
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                )
                .encode(&mut out)
                .unwrap();
        }
        Step::Corrupt => {
            out = frame(&Step::Event(vec![999], Some(999)));
            let last = out.len() - 1;
            out[last] ^= 0xff;
        }
        Step::Big(first, count, size) => {
            let records = (*first..first + count)
                .map(|n| {
                    Record::new(
                        sequence(n),
                        Bytes::from(vec![b'x'; *size]),
                        PartitionKey::new("k").unwrap(),
                    )
                })
                .collect();
            let mut event = SubscribeToShardEvent::new(records, 0);
            event.continuation_sequence_number = Some(sequence(first + count - 1));
            Message::new(event.encode_body(Protocol::Cbor))
                .with_header(":message-type", HeaderValue::String("event".into()))
                .with_header(
                    ":event-type",
                    HeaderValue::String("SubscribeToShardEvent".into()),
                )
                .with_header(
                    ":content-type",
                    HeaderValue::String("application/x-amz-cbor-1.1".into()),
                )
                .encode(&mut out)
                .unwrap();
        }
        Step::Silence | Step::GoAway => {}
    }
    out
}

/// The scripted server: answers, and the starting position of every request.
struct Script {
    url: String,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    positions: Arc<Mutex<Vec<StartingPosition>>>,
    connections: Arc<AtomicUsize>,
    /// Body bytes hyper took from the script (sent, or queued within the HTTP/2 window).
    taken: Arc<AtomicUsize>,
}

impl Script {
    async fn start(answers: Vec<Answer>) -> Self {
        Self::start_limited(answers, 200).await
    }

    /// A server that allows `max_streams` concurrent streams per connection.
    async fn start_limited(answers: Vec<Answer>, max_streams: u32) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let positions: Arc<Mutex<Vec<StartingPosition>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let taken_total = Arc::new(AtomicUsize::new(0));
        let (queue, seen, accepted, all_taken) = (
            Arc::clone(&answers),
            Arc::clone(&positions),
            Arc::clone(&connections),
            Arc::clone(&taken_total),
        );
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.fetch_add(1, Ordering::SeqCst);
                let (queue, seen, taken) = (
                    Arc::clone(&queue),
                    Arc::clone(&seen),
                    Arc::clone(&all_taken),
                );
                // A GoAway step asks this connection to close gracefully.
                let goaway = Arc::new(tokio::sync::Notify::new());
                let asked = Arc::clone(&goaway);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let (queue, seen, asked, taken) = (
                                Arc::clone(&queue),
                                Arc::clone(&seen),
                                Arc::clone(&asked),
                                Arc::clone(&taken),
                            );
                            async move {
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                let input =
                                    SubscribeToShardInput::decode_body(body, Protocol::Json)
                                        .unwrap();
                                seen.lock().unwrap().push(input.starting_position);
                                let answer = queue
                                    .lock()
                                    .unwrap()
                                    .pop_front()
                                    .unwrap_or(Answer::Refuse("ResourceNotFoundException"));
                                let (sender, receiver) = tokio::sync::mpsc::channel(16);
                                let response = match answer {
                                    Answer::Refuse(code) => {
                                        let _ = sender
                                            .send(Bytes::from(format!(
                                                r#"{{"__type":"{code}","message":"scripted"}}"#
                                            )))
                                            .await;
                                        drop(sender);
                                        http::Response::builder()
                                            .status(400)
                                            .header("content-type", "application/x-amz-json-1.1")
                                            .body(ChannelBody(receiver, Arc::clone(&taken)))
                                            .unwrap()
                                    }
                                    Answer::Stream(steps) => {
                                        tokio::spawn(async move {
                                            for step in &steps {
                                                if matches!(step, Step::GoAway) {
                                                    asked.notify_one();
                                                    continue;
                                                }
                                                if matches!(step, Step::Silence) {
                                                    // Keep the stream open, silent, until the
                                                    // client gives up on it.
                                                    sender.closed().await;
                                                    return;
                                                }
                                                if sender
                                                    .send(Bytes::from(frame(step)))
                                                    .await
                                                    .is_err()
                                                {
                                                    return;
                                                }
                                            }
                                        });
                                        http::Response::builder()
                                            .header(
                                                "content-type",
                                                "application/vnd.amazon.eventstream",
                                            )
                                            .body(ChannelBody(receiver, Arc::clone(&taken)))
                                            .unwrap()
                                    }
                                };
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let mut builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http2().max_concurrent_streams(max_streams);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        () = goaway.notified() => connection.as_mut().graceful_shutdown(),
                    }
                    let _ = connection.await;
                });
            }
        });
        Self {
            url,
            answers,
            positions,
            connections,
            taken: taken_total,
        }
    }

    fn reader(&self) -> ShardReader {
        self.reader_with(|_| {})
    }

    fn client(&self) -> Client {
        Client::builder()
            .region("us-east-1")
            .endpoint(&self.url)
            .http_version(HttpVersion::Http2)
            .credentials(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build()
            .unwrap()
    }

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
            Self::config(configure),
        )
    }

    fn reader_with(&self, configure: impl FnOnce(&mut ReaderConfig)) -> ShardReader {
        ShardReader::new(
            self.client(),
            consumer(),
            ShardId::new("shardId-000000000000").unwrap(),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            Self::config(configure),
        )
    }

    /// Where each subscription started: `None` for TRIM_HORIZON, else the AFTER number.
    fn starts(&self) -> Vec<Option<u64>> {
        self.positions
            .lock()
            .unwrap()
            .iter()
            .map(|p| {
                p.sequence_number
                    .as_ref()
                    .map(|s| s.as_str().parse().unwrap())
            })
            .collect()
    }

    fn unused(&self) -> usize {
        self.answers.lock().unwrap().len()
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
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
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
    let taken = script.taken.load(Ordering::SeqCst);
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
    assert_eq!(script.connections.load(Ordering::SeqCst), 3);
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
    let client = Client::builder()
        .region("us-east-1")
        .endpoint(&relay.url)
        .http_version(HttpVersion::Http2)
        .http2_keep_alive(Duration::from_millis(200), Duration::from_millis(200))
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .build()
        .unwrap();
    // The inactivity watchdog is far off: only the pings can notice the dead connection.
    let config = Script::config(|config| config.inactivity = Duration::from_secs(60));
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
        std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
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
