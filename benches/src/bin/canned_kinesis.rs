//! A canned Kinesis endpoint for the client benchmark, run as a process of its own so that the
//! client's CPU time is measured apart from the server's: answers GetRecords with 1000 records
//! of 1 KiB, PutRecords with 500 successes, and SubscribeToShard with a closed shard's whole
//! subscription (200 events of 100 records of 1 KiB), in the protocol of the request, over
//! HTTP/1.1 or h2c on a loopback port it prints on its first line. It exits when its standard
//! input closes.

use std::convert::Infallible;
use std::io::BufRead;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_benches::{closed_shard_subscription, get_records_body};
use kds_proto::model::{PutRecordsOutput, PutRecordsResultEntry};
use kds_proto::types::{SequenceNumber, ShardId};
use kds_proto::{Protocol, Shape};

/// Responses by protocol: GetRecords, PutRecords, SubscribeToShard.
struct Canned {
    json: (Bytes, Bytes, Bytes),
    cbor: (Bytes, Bytes, Bytes),
}

fn put_records_body(protocol: Protocol) -> Bytes {
    let entries = (0..500)
        .map(|i| {
            let mut entry = PutRecordsResultEntry::new();
            entry.sequence_number = Some(
                SequenceNumber::new(format!(
                    "4959033827149025660855969253836157109592157598913{i:07}"
                ))
                .expect("valid"),
            );
            entry.shard_id = Some(ShardId::new("shardId-000000000000").expect("valid"));
            entry
        })
        .collect();
    let mut output = PutRecordsOutput::new(entries);
    output.failed_record_count = Some(0);
    output.encode_body(protocol).into()
}

fn main() {
    let canned = Arc::new(Canned {
        json: (
            get_records_body(1000, 1024, Protocol::Json),
            put_records_body(Protocol::Json),
            closed_shard_subscription(200, 100, 1024, Protocol::Json),
        ),
        cbor: (
            get_records_body(1000, 1024, Protocol::Cbor),
            put_records_body(Protocol::Cbor),
            closed_shard_subscription(200, 100, 1024, Protocol::Cbor),
        ),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        println!("{}", listener.local_addr().expect("bound").port());
        // Stop when the benchmark closes our standard input.
        std::thread::spawn(|| {
            for _ in std::io::stdin().lock().lines() {}
            std::process::exit(0);
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let canned = Arc::clone(&canned);
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let canned = Arc::clone(&canned);
                    async move {
                        let cbor = request
                            .headers()
                            .get("content-type")
                            .is_some_and(|v| v.as_bytes().ends_with(b"cbor-1.1"));
                        let target = request
                            .headers()
                            .get("x-amz-target")
                            .map(|v| v.as_bytes().to_vec())
                            .unwrap_or_default();
                        // Read the request; its content does not matter.
                        let _ = request.into_body().collect().await;
                        let (get_body, put_body, subscription) =
                            if cbor { &canned.cbor } else { &canned.json };
                        let (body, content_type) = if target.ends_with(b"PutRecords") {
                            (
                                put_body,
                                if cbor { Protocol::Cbor } else { Protocol::Json }.content_type(),
                            )
                        } else if target.ends_with(b"SubscribeToShard") {
                            (subscription, "application/vnd.amazon.eventstream")
                        } else {
                            (
                                get_body,
                                if cbor { Protocol::Cbor } else { Protocol::Json }.content_type(),
                            )
                        };
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header("content-type", content_type)
                                .header("x-amzn-RequestId", "canned")
                                .body(Full::new(body.clone()))
                                .expect("a response"),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
