//! kds-client beside aws-sdk-kinesis and a client that parses nothing, in one run, against a
//! canned endpoint in a process of its own (`canned_kinesis`) on loopback over HTTP/1.1. The
//! measurement is this process's CPU time (user + system, all threads), so the numbers are the
//! client's cost: GetRecords of 1000 records of 1 KiB and PutRecords of 500 records of 1 KiB.
//! Then enhanced fan-out end to end over h2c: one shard, and eight shards on one connection,
//! each reading 200 events of 100 records of 1 KiB, as CPU time and as wall time; for one shard
//! in JSON, beside aws-sdk-kinesis's SubscribeToShard and an h2c client that parses nothing.

use std::hint::black_box;
use std::io::BufRead;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector as SdkConnector, HttpConnectorFuture, HttpConnectorSettings,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kds_benches::put_records_request;
use kds_client::credentials::Credentials;
use kds_client::{Client, HttpVersion, Protocol};
use kds_efo::{ReaderConfig, ShardReader};
use kds_proto::model::{GetRecordsInput, StartingPosition, SubscribeToShardInput};
use kds_proto::types::{ConsumerArn, ShardId, ShardIterator, ShardIteratorType};
use kds_proto::{Request, Shape};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

/// CPU time of this process.
struct CpuTime;

fn cpu() -> Duration {
    cpu_time::ProcessTime::now().as_duration()
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        cpu()
    }

    fn end(&self, start: Duration) -> Duration {
        cpu().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds of CPU, shown in µs or ms; throughput per CPU second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e6 {
            (1e-3, "µs CPU")
        } else {
            (1e-6, "ms CPU")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => *n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            _ => 1.0,
        };
        // Nanoseconds of CPU per record.
        values.iter_mut().for_each(|v| *v /= per_iteration);
        "ns CPU per element"
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns CPU"
    }
}

/// The canned endpoint; stops when dropped (its standard input closes).
struct Server {
    url: String,
    _stdin: ChildStdin,
    child: Child,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canned_kinesis"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the canned server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the port");
        Self {
            url: format!("http://127.0.0.1:{}", line.trim()),
            _stdin: child.stdin.take().expect("piped"),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kds(url: &str, protocol: Protocol, version: HttpVersion) -> Client {
    Client::builder()
        .region("us-east-1")
        .endpoint(url)
        .protocol(protocol)
        .http_version(version)
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "bench",
        ))
        .build()
        .expect("a client")
}

fn sdk(url: &str) -> aws_sdk_kinesis::Client {
    sdk_with(url, aws_smithy_http_client::Builder::new().build_http())
}

fn sdk_with(url: &str, http_client: impl HttpClient + 'static) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "bench",
        ))
        .http_client(http_client)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// An HTTP client for the SDK that speaks HTTP/2 without TLS (h2c with prior knowledge), as
/// the canned server's SubscribeToShard needs: the SDK's own clients speak HTTP/2 only over TLS.
/// Its transport settings are kds-client's (frames of up to 256 KiB).
#[derive(Debug, Clone)]
struct SdkH2c(HyperClient<HttpConnector, SdkBody>);

impl SdkH2c {
    fn new() -> Self {
        Self(
            HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .http2_max_frame_size(256 * 1024)
                .build_http(),
        )
    }
}

impl SdkConnector for SdkH2c {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = client
                .request(request)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

impl HttpClient for SdkH2c {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// Sends a prepared body and reads the response's frames as they arrive, joining and parsing
/// nothing; returns the bytes read.
async fn raw_stream(
    client: &HyperClient<HttpConnector, Full<Bytes>>,
    url: &str,
    target: &str,
    body: &Bytes,
) -> usize {
    let request = http::Request::post(url)
        .header("content-type", Protocol::Json.content_type())
        .header("x-amz-target", target)
        .body(Full::new(body.clone()))
        .expect("a request");
    let mut body = client
        .request(request)
        .await
        .expect("a response")
        .into_body();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("a frame").into_data() {
            bytes += black_box(data).len();
        }
    }
    bytes
}

fn client(c: &mut Criterion<CpuTime>) {
    let server = Server::start();
    let url = server.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let kds_json = kds(&url, Protocol::Json, HttpVersion::Http1);
    let kds_cbor = kds(&url, Protocol::Cbor, HttpVersion::Http1);
    let sdk = sdk(&url);
    let raw: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build_http();
    let iterator = "AAAAAAAAAAHb".repeat(20);

    let mut group = c.benchmark_group("client_get_records_1000x1KiB");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    group.bench_function("aws-sdk-kinesis (JSON)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let output = sdk
                    .get_records()
                    .shard_iterator(&iterator)
                    .send()
                    .await
                    .expect("records");
                assert_eq!(output.records.len(), 1000);
                black_box(output);
            });
        });
    });
    for (name, kds) in [("kds (JSON)", &kds_json), ("kds (CBOR)", &kds_cbor)] {
        let request = GetRecordsInput::new(ShardIterator::new(iterator.clone()).expect("valid"));
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let output = kds.send(&request).await.expect("records");
                    assert_eq!(output.records.len(), 1000);
                    black_box(output);
                });
            });
        });
    }
    for (name, kds) in [
        ("kds (JSON, records lent)", &kds_json),
        ("kds (CBOR, records lent)", &kds_cbor),
    ] {
        let request = GetRecordsInput::new(ShardIterator::new(iterator.clone()).expect("valid"));
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut bytes = 0;
                    let page = kds
                        .get_records_visit(&request, |record| bytes += record.data.len())
                        .await
                        .expect("records");
                    assert_eq!(page.records, 1000);
                    black_box(bytes);
                });
            });
        });
    }
    let get_body: Bytes =
        GetRecordsInput::new(ShardIterator::new(iterator.clone()).expect("valid"))
            .encode_body(Protocol::Json)
            .into();
    // The body's pieces as they arrive, not joined: joining them is the client's work.
    group.bench_function("floor: a client that parses nothing", |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(raw_stream(&raw, &url, GetRecordsInput::TARGET, &get_body).await);
            });
        });
    });
    group.finish();

    let request = put_records_request(500, 1024);
    let sdk_entries: Vec<aws_sdk_kinesis::types::PutRecordsRequestEntry> = request
        .records
        .iter()
        .map(|e| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .data(Blob::new(e.data.to_vec()))
                .partition_key(e.partition_key.as_str())
                .build()
                .expect("valid")
        })
        .collect();
    let mut group = c.benchmark_group("client_put_records_500x1KiB");
    group.throughput(Throughput::Elements(500));
    group.sample_size(20);
    group.bench_function("aws-sdk-kinesis (JSON)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let output = sdk
                    .put_records()
                    .stream_name("bench-stream")
                    .set_records(Some(sdk_entries.clone()))
                    .send()
                    .await
                    .expect("written");
                black_box(output);
            });
        });
    });
    for (name, kds) in [("kds (JSON)", &kds_json), ("kds (CBOR)", &kds_cbor)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let output = kds.send(&request).await.expect("written");
                    assert_eq!(output.records.len(), 500);
                    black_box(output);
                });
            });
        });
    }
    let put_body: Bytes = request.encode_body(Protocol::Json).into();
    group.bench_function(
        "floor: SHA-256 of the body, then a client that parses nothing",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    black_box(Sha256::digest(&put_body));
                    black_box(
                        raw_stream(&raw, &url, "Kinesis_20131202.PutRecords", &put_body).await,
                    );
                });
            });
        },
    );
    group.finish();
}

/// Records in one closed shard's canned subscription.
const SUBSCRIPTION_RECORDS: usize = 200 * 100;

/// Reads a closed shard's whole subscription on each of `shards` shards at once, all of them
/// over `client`'s one HTTP/2 connection; returns the records read.
async fn read_shards(client: &Client, shards: usize) -> usize {
    let consumer = consumer_arn();
    let mut tasks = JoinSet::new();
    for n in 0..shards {
        let mut reader = ShardReader::new(
            client.clone(),
            consumer.clone(),
            shard(n),
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            ReaderConfig::default(),
        );
        tasks.spawn(async move {
            let mut count = 0;
            while let Some(batch) = reader.next_batch().await.expect("records") {
                count += batch.records.len();
            }
            count
        });
    }
    let mut total = 0;
    while let Some(count) = tasks.join_next().await {
        total += count.expect("a reader");
    }
    assert_eq!(total, shards * SUBSCRIPTION_RECORDS);
    total
}

/// The consumer the benchmark's subscriptions name (the canned server reads no request).
fn consumer_arn() -> ConsumerArn {
    ConsumerArn::new("arn:aws:kinesis:us-east-1:123456789012:stream/bench/consumer/c:1")
        .expect("valid")
}

fn shard(n: usize) -> ShardId {
    ShardId::new(format!("shardId-{n:012}")).expect("valid")
}

/// Reads a closed shard's whole subscription with the SDK, every record owned as the SDK
/// gives it; returns the records read.
async fn sdk_read_shard(sdk: &aws_sdk_kinesis::Client) -> usize {
    use aws_sdk_kinesis::types::{
        ShardIteratorType as SdkIteratorType, StartingPosition as SdkPosition,
        SubscribeToShardEventStream,
    };
    let mut output = sdk
        .subscribe_to_shard()
        .consumer_arn(consumer_arn().as_str())
        .shard_id(shard(0).as_str())
        .starting_position(
            SdkPosition::builder()
                .r#type(SdkIteratorType::TrimHorizon)
                .build()
                .expect("valid"),
        )
        .send()
        .await
        .expect("a subscription");
    let mut count = 0;
    while let Some(event) = output.event_stream.recv().await.expect("events") {
        if let SubscribeToShardEventStream::SubscribeToShardEvent(event) = event {
            count += event.records.len();
        }
    }
    assert_eq!(count, SUBSCRIPTION_RECORDS);
    count
}

/// Enhanced fan-out end to end: ShardReaders on one connection to the canned server, each
/// reading a closed shard's 200 events of 100 records of 1 KiB; measured as CPU time (`M` =
/// CpuTime) or wall time (records per second).
fn efo_end_to_end<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);

    // One shard in JSON three ways: the SDK, and a client that reads the bytes and parses
    // nothing (the floor), beside kds's rows below.
    let sdk = sdk_with(&server.url, SdkH2c::new());
    group.throughput(Throughput::Elements(SUBSCRIPTION_RECORDS as u64));
    group.bench_function("1 shard, aws-sdk-kinesis (JSON)", |b| {
        b.iter(|| black_box(runtime.block_on(sdk_read_shard(&sdk))));
    });
    let raw: HyperClient<HttpConnector, Full<Bytes>> = HyperClient::builder(TokioExecutor::new())
        .http2_only(true)
        .http2_max_frame_size(256 * 1024)
        .build_http();
    let subscribe_body: Bytes = SubscribeToShardInput::new(
        consumer_arn(),
        shard(0),
        StartingPosition::new(ShardIteratorType::TrimHorizon),
    )
    .encode_body(Protocol::Json)
    .into();
    group.bench_function(
        "1 shard, floor: an h2c client that parses nothing (JSON)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let bytes = raw_stream(
                        &raw,
                        &server.url,
                        SubscribeToShardInput::TARGET,
                        &subscribe_body,
                    )
                    .await;
                    assert!(
                        bytes > SUBSCRIPTION_RECORDS * 1024,
                        "the whole subscription"
                    );
                    black_box(bytes)
                })
            });
        },
    );

    for shards in [1, 8] {
        group.throughput(Throughput::Elements((shards * SUBSCRIPTION_RECORDS) as u64));
        for (protocol, name) in [(Protocol::Json, "JSON"), (Protocol::Cbor, "CBOR")] {
            let client = kds(&server.url, protocol, HttpVersion::Http2);
            let label = if shards == 1 {
                format!("1 shard ({name})")
            } else {
                format!("{shards} shards, one connection ({name})")
            };
            group.bench_function(label, |b| {
                b.iter(|| black_box(runtime.block_on(read_shards(&client, shards))));
            });
        }
    }
    group.finish();
}

fn efo_cpu(c: &mut Criterion<CpuTime>) {
    efo_end_to_end(c, "efo_end_to_end_cpu_200x100x1KiB");
}

fn efo_wall(c: &mut Criterion) {
    efo_end_to_end(c, "efo_end_to_end_wall_200x100x1KiB");
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = client, efo_cpu
}
criterion_group!(wall, efo_wall);
criterion_main!(benches, wall);
