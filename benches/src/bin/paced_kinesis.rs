//! A canned Kinesis endpoint that serves every shard at its read limit, for the readers
//! benchmark (`benches/readers_500.rs`), run as a process of its own so that the reader's CPU
//! time is measured apart from the server's.
//!
//! - SubscribeToShard: an event of 100 records of 1 KiB every 50 ms (2 MiB/s, a shard's
//!   enhanced fan-out limit), for as long as the subscription stays open, starting after the
//!   requested sequence number.
//! - GetShardIterator and GetRecords: pages of 400 records of 1 KiB (2 MiB/s at the five calls
//!   per second a shard allows), the iterator naming the shard and the next record.
//!
//! Records are [`kds_benches::paced`]'s, rendered from templates. Payloads are in the protocol
//! of the request, over HTTP/1.1 or h2c on a loopback port printed on the first line. When its
//! standard input closes it prints the most GetRecords calls any shard got within one second and
//! the connections it accepted, then exits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_benches::paced::{self, PER_EVENT, Template, number};
use kds_proto::model::{
    GetRecordsInput, GetShardIteratorInput, GetShardIteratorOutput, SubscribeToShardInput,
};
use kds_proto::{Protocol, Shape};

const EVENT_EVERY: Duration = Duration::from_millis(50);

struct Server {
    events: [Template; 2],
    pages: [Template; 2],
    started: Instant,
    /// GetRecords calls per shard and second since the start.
    calls: Mutex<HashMap<(u64, u64), u32>>,
    connections: AtomicUsize,
}

type BoxedBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A response body fed from a channel, one frame a message.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// `shardId-000000000123` → 123.
fn shard_number(shard: &str) -> u64 {
    shard
        .strip_prefix("shardId-")
        .and_then(|n| n.parse().ok())
        .expect("a bench shard")
}

fn index(protocol: Protocol) -> usize {
    usize::from(protocol == Protocol::Cbor)
}

impl Server {
    fn subscribe(self: &Arc<Self>, body: Bytes, protocol: Protocol) -> http::Response<BoxedBody> {
        let input = SubscribeToShardInput::decode_body(body, protocol).expect("a request");
        let mut next = input
            .starting_position
            .sequence_number
            .as_ref()
            .and_then(number)
            .map_or(0, |n| n + 1);
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
        let server = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVENT_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let event = server.events[index(protocol)].render(next, 0);
                next += PER_EVENT;
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        });
        http::Response::builder()
            .header("content-type", "application/vnd.amazon.eventstream")
            .body(BodyExt::boxed(ChannelBody(receiver)))
            .expect("a response")
    }

    fn get_shard_iterator(&self, body: Bytes, protocol: Protocol) -> Bytes {
        let input = GetShardIteratorInput::decode_body(body, protocol).expect("a request");
        let first = input
            .starting_sequence_number
            .as_ref()
            .and_then(number)
            .unwrap_or(0);
        let mut output = GetShardIteratorOutput::new();
        output.shard_iterator = Some(paced::iterator(input.shard_id.as_str(), first));
        output.encode_body(protocol).into()
    }

    fn get_records(&self, body: Bytes, protocol: Protocol) -> Bytes {
        let input = GetRecordsInput::decode_body(body, protocol).expect("a request");
        let (shard, first) = input
            .shard_iterator
            .as_str()
            .split_once('/')
            .expect("one of ours");
        let (shard, first) = (shard_number(shard), first.parse().expect("one of ours"));
        let second = self.started.elapsed().as_secs();
        *self
            .calls
            .lock()
            .expect("not poisoned")
            .entry((shard, second))
            .or_default() += 1;
        self.pages[index(protocol)].render(first, shard)
    }

    /// The most GetRecords calls any shard got within one second (of the server's clock).
    fn busiest_second(&self) -> u32 {
        let calls = self.calls.lock().expect("not poisoned");
        calls.values().copied().max().unwrap_or(0)
    }
}

fn main() {
    let server = Arc::new(Server {
        events: [
            Template::event(Protocol::Json),
            Template::event(Protocol::Cbor),
        ],
        pages: [
            Template::page(Protocol::Json),
            Template::page(Protocol::Cbor),
        ],
        started: Instant::now(),
        calls: Mutex::default(),
        connections: AtomicUsize::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = Arc::clone(&server);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        println!("{}", listener.local_addr().expect("bound").port());
        // Report and stop when the benchmark closes our standard input.
        std::thread::spawn(move || {
            for _ in std::io::stdin().lock().lines() {}
            println!(
                "busiest-second={} connections={}",
                report.busiest_second(),
                report.connections.load(Ordering::Relaxed)
            );
            std::process::exit(0);
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            server.connections.fetch_add(1, Ordering::Relaxed);
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(answer(&server, request).await) }
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder.http2().max_concurrent_streams(1000);
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer(
    server: &Arc<Server>,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<BoxedBody> {
    let protocol = if request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().ends_with(b"cbor-1.1"))
    {
        Protocol::Cbor
    } else {
        Protocol::Json
    };
    let target = request
        .headers()
        .get("x-amz-target")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let plain = |status: u16, body: Bytes| {
        http::Response::builder()
            .status(status)
            .header("content-type", protocol.content_type())
            .body(BodyExt::boxed(Full::new(body)))
            .expect("a response")
    };
    let Ok(body) = request.into_body().collect().await else {
        // The client went away mid-request, as readers dropped at the end of a run do.
        return plain(400, Bytes::new());
    };
    let body = body.to_bytes();
    if target.ends_with(b".SubscribeToShard") {
        server.subscribe(body, protocol)
    } else if target.ends_with(b".GetShardIterator") {
        plain(200, server.get_shard_iterator(body, protocol))
    } else if target.ends_with(b".GetRecords") {
        plain(200, server.get_records(body, protocol))
    } else {
        eprintln!(
            "paced_kinesis: no canned answer to {}",
            String::from_utf8_lossy(&target)
        );
        plain(
            400,
            Bytes::from_static(br#"{"__type":"UnknownOperationException"}"#),
        )
    }
}
