//! A scripted SubscribeToShard server over HTTP/1.1 and h2c: each test says what every
//! subscription answers ([`Answer`]), event by event ([`Step`]), and reads back where each
//! subscription started. Events are built with kds-proto's own encoder
//! ([`SubscribeToShardItem::to_message`]).
//!
//! Records are numbered: record `n` has sequence number `n`, data `record-{n}`, partition key
//! `k`, and arrived `n` seconds after the epoch.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_client::{Client, HttpVersion};
use kds_proto::eventstream::SubscribeToShardItem;
use kds_proto::model::{
    ChildShard, HashKeyRange, Record, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardInput,
};
use kds_proto::types::{ConsumerArn, HashKey, PartitionKey, SequenceNumber, ShardId, Timestamp};
use kds_proto::{Protocol, ServiceError, Shape};

/// One step of a subscription's answer.
#[derive(Clone, Debug)]
pub enum Step {
    /// An event with records of these sequence numbers and this continuation (`None`: the last
    /// event of a closed shard, naming [`child`] as its child).
    Event(Vec<u64>, Option<u64>),
    /// An event with these records, no continuation and no children: a protocol break on an
    /// open shard.
    Broken(Vec<u64>),
    /// An exception message with this code; the stream ends.
    Exception(&'static str),
    /// A frame whose checksum is wrong.
    Corrupt,
    /// An event of `count` records of `size` bytes from sequence number `first` on, in CBOR.
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
pub enum Answer {
    /// An HTTP 400 with this error code.
    Refuse(&'static str),
    /// A 200 and an event stream of these steps, then the end of the body (unless silent).
    Stream(Vec<Step>),
}

/// The consumer the scripted server pretends to serve.
pub fn consumer() -> ConsumerArn {
    ConsumerArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1").unwrap()
}

/// Sequence number `n`.
pub fn sequence(n: u64) -> SequenceNumber {
    SequenceNumber::new(n.to_string()).unwrap()
}

/// Record `n`.
pub fn record(n: u64) -> Record {
    let mut record = Record::new(
        sequence(n),
        Bytes::from(format!("record-{n}")),
        PartitionKey::new("k").unwrap(),
    );
    record.approximate_arrival_timestamp =
        Some(Timestamp::from_millis(i64::try_from(n).unwrap() * 1000));
    record
}

/// An event (0 ms behind) with records of these sequence numbers.
pub fn event_of(numbers: &[u64]) -> SubscribeToShardEvent {
    SubscribeToShardEvent::new(numbers.iter().map(|&n| record(n)).collect(), 0)
}

/// The child shard a closed shard's last event names: `shardId-000000000002`, child of
/// `shardId-000000000000`.
pub fn child() -> ChildShard {
    ChildShard::new(
        ShardId::new("shardId-000000000002").unwrap(),
        vec![ShardId::new("shardId-000000000000").unwrap()],
        HashKeyRange::new(HashKey::MIN, HashKey::MAX),
    )
}

fn encode(item: &SubscribeToShardItem, protocol: Protocol) -> Vec<u8> {
    let mut out = Vec::new();
    item.to_message(protocol).encode(&mut out).unwrap();
    out
}

/// The bytes of one step (none for `Silence` and `GoAway`).
pub fn frame(step: &Step) -> Vec<u8> {
    let event =
        |event: SubscribeToShardEvent| encode(&SubscribeToShardItem::Event(event), Protocol::Json);
    match step {
        Step::Behind(continuation, millis) => {
            let mut e = SubscribeToShardEvent::new(Vec::new(), *millis);
            e.continuation_sequence_number = Some(sequence(*continuation));
            event(e)
        }
        Step::Closed(numbers, continuation) => {
            let mut e = event_of(numbers);
            e.continuation_sequence_number = Some(sequence(*continuation));
            e.child_shards = Some(vec![child()]);
            event(e)
        }
        Step::Event(numbers, continuation) => {
            let mut e = event_of(numbers);
            e.continuation_sequence_number = continuation.map(sequence);
            if continuation.is_none() {
                e.child_shards = Some(vec![child()]);
            }
            event(e)
        }
        Step::Broken(numbers) => event(event_of(numbers)),
        Step::Exception(code) => encode(
            &SubscribeToShardItem::Exception(ServiceError::new(
                *code,
                Some(format!("scripted {code}")),
                None,
                None,
            )),
            Protocol::Json,
        ),
        Step::Corrupt => {
            let mut out = frame(&Step::Event(vec![999], Some(999)));
            let last = out.len() - 1;
            out[last] ^= 0xff;
            out
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
            let mut e = SubscribeToShardEvent::new(records, 0);
            e.continuation_sequence_number = Some(sequence(first + count - 1));
            encode(&SubscribeToShardItem::Event(e), Protocol::Cbor)
        }
        Step::Silence | Step::GoAway => Vec::new(),
    }
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

/// The scripted server: its answers, and the request of every subscription.
pub struct Script {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    requests: Arc<Mutex<Vec<SubscribeToShardInput>>>,
    connections: Arc<AtomicUsize>,
    /// Body bytes hyper took from the script (sent, or queued within the HTTP/2 window).
    taken: Arc<AtomicUsize>,
}

impl Script {
    /// A server answering each subscription with the next of `answers` (then
    /// ResourceNotFoundException), allowing 200 streams per connection.
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::start_limited(answers, 200).await
    }

    /// A server that allows `max_streams` concurrent streams per connection.
    pub async fn start_limited(answers: Vec<Answer>, max_streams: u32) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Self {
            url,
            answers: Arc::new(Mutex::new(VecDeque::from(answers))),
            requests: Arc::default(),
            connections: Arc::default(),
            taken: Arc::default(),
        };
        let (queue, seen, accepted, all_taken) = (
            Arc::clone(&script.answers),
            Arc::clone(&script.requests),
            Arc::clone(&script.connections),
            Arc::clone(&script.taken),
        );
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
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
                            answer(
                                request,
                                Arc::clone(&queue),
                                Arc::clone(&seen),
                                Arc::clone(&asked),
                                Arc::clone(&taken),
                            )
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
        script
    }

    /// An h2c JSON client of the server.
    pub fn client(&self) -> Client {
        crate::client_builder(&self.url)
            .http_version(HttpVersion::Http2)
            .build()
            .unwrap()
    }

    /// Where each subscription started: `None` for TRIM_HORIZON (or any position without a
    /// sequence number), else the sequence number.
    pub fn starts(&self) -> Vec<Option<u64>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.starting_position
                    .sequence_number
                    .as_ref()
                    .map(|s| s.as_str().parse().unwrap())
            })
            .collect()
    }

    /// The starting position of each subscription.
    pub fn positions(&self) -> Vec<StartingPosition> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.starting_position.clone())
            .collect()
    }

    /// Answers not given yet.
    pub fn unused(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Body bytes taken by hyper so far.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }
}

async fn answer(
    request: http::Request<hyper::body::Incoming>,
    queue: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<SubscribeToShardInput>>>,
    goaway: Arc<tokio::sync::Notify>,
    taken: Arc<AtomicUsize>,
) -> Result<http::Response<ChannelBody>, Infallible> {
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let input = SubscribeToShardInput::decode_body(body, Protocol::Json).unwrap();
    seen.lock().unwrap().push(input);
    let answer = queue
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Refuse("ResourceNotFoundException"));
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    Ok(match answer {
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
                .body(ChannelBody(receiver, taken))
                .unwrap()
        }
        Answer::Stream(steps) => {
            tokio::spawn(async move {
                for step in &steps {
                    match step {
                        Step::GoAway => goaway.notify_one(),
                        // Keep the stream open, silent, until the client gives up on it.
                        Step::Silence => return sender.closed().await,
                        step => {
                            if sender.send(Bytes::from(frame(step))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            http::Response::builder()
                .header("content-type", "application/vnd.amazon.eventstream")
                .body(ChannelBody(receiver, taken))
                .unwrap()
        }
    })
}
