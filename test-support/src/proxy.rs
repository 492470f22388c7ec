//! A proxy in front of ferrokinesis that injects scripted faults: errors with any status and
//! code, connection resets (before or after forwarding), stalls, partial PutRecords failures,
//! clock skew, canned replies and HTTP/2 GOAWAY. Faults apply one per request, in order, either to the next requests of any
//! operation ([`Proxy::script`]) or to the next requests of one operation
//! ([`Proxy::script_for`]), which take precedence.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kds_client::{Client, RetryPolicy};
use kds_proto::model::{
    GetRecordsOutput, PutRecordsInput, PutRecordsOutput, PutRecordsResultEntry,
};
use kds_proto::{Protocol, Shape};

use crate::{Ferrokinesis, client_builder, fast_retries};

/// What the proxy does with a request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and error code instead of forwarding.
    Error(u16, &'static str),
    /// Close the connection without answering.
    Reset,
    /// Wait this long, then forward.
    Stall(Duration),
    /// PutRecords: forward all entries but these, and answer these with this error code.
    FailEntries(Vec<usize>, &'static str),
    /// Answer RequestTimeTooSkewed with a `Date` this far ahead of ours.
    Skewed(Duration),
    /// Answer 200 with this JSON body instead of forwarding.
    Reply(String),
    /// Forward, then close the connection gracefully (HTTP/2 GOAWAY).
    GoAway,
    /// Forward, then close the connection without answering: the request took effect, and
    /// the client cannot know it.
    LoseResponse,
}

/// PutRecords answers that throttle the entries at these indexes.
pub fn throttle(entries: Vec<usize>) -> Fault {
    Fault::FailEntries(entries, "ProvisionedThroughputExceededException")
}

/// A fault-injecting proxy in front of its own ferrokinesis (JSON requests).
pub struct Proxy {
    /// The proxy's URL (HTTP/1.1 and h2c).
    pub url: String,
    /// A client of ferrokinesis itself, past the proxy.
    pub upstream: Client,
    shared: Arc<Shared>,
    _ferrokinesis: Ferrokinesis,
}

/// What the proxy's connections share.
struct Shared {
    faults: Mutex<VecDeque<Fault>>,
    faults_by_operation: Mutex<HashMap<String, VecDeque<Fault>>>,
    strip_child_shards: AtomicBool,
    /// The operation of each request.
    requests: Mutex<Vec<String>>,
    /// The operation and body of each request, in the order the bodies arrived.
    bodies: Mutex<Vec<(String, Bytes)>>,
    /// The `X-Amz-Date` of each request.
    dates: Mutex<Vec<String>>,
    /// Connections accepted.
    connections: AtomicUsize,
    forward: HyperClient<HttpConnector, Full<Bytes>>,
    upstream: String,
}

impl Proxy {
    /// A proxy in front of a new ferrokinesis.
    pub async fn start() -> Self {
        let ferrokinesis = Ferrokinesis::start().await;
        let upstream_url = ferrokinesis.url.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            faults: Mutex::default(),
            faults_by_operation: Mutex::default(),
            strip_child_shards: AtomicBool::new(false),
            requests: Mutex::default(),
            bodies: Mutex::default(),
            dates: Mutex::default(),
            connections: AtomicUsize::new(0),
            forward: HyperClient::builder(TokioExecutor::new()).build_http(),
            upstream: upstream_url.clone(),
        });
        let accepting = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    // A GoAway fault asks this connection to close gracefully (GOAWAY on h2).
                    let goaway = Arc::new(tokio::sync::Notify::new());
                    let asked = Arc::clone(&goaway);
                    let service = service_fn(move |request| {
                        handle(request, Arc::clone(&shared), Arc::clone(&asked))
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
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
            upstream: client_builder(&upstream_url)
                .retry_policy("DescribeStreamSummary", RetryPolicy::NONE)
                .build()
                .unwrap(),
            shared,
            _ferrokinesis: ferrokinesis,
        }
    }

    /// Faults for the next requests, whatever their operation, one each.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.faults.lock().unwrap().extend(faults);
    }

    /// Faults for the next requests of `operation` (`ListShards`, say), one each.
    pub fn script_for(&self, operation: &str, faults: impl IntoIterator<Item = Fault>) {
        self.shared
            .faults_by_operation
            .lock()
            .unwrap()
            .entry(operation.to_owned())
            .or_default()
            .extend(faults);
    }

    /// Faults still to be applied, for any operation.
    pub fn unused_faults(&self) -> usize {
        self.shared.faults.lock().unwrap().len()
            + self
                .shared
                .faults_by_operation
                .lock()
                .unwrap()
                .values()
                .map(VecDeque::len)
                .sum::<usize>()
    }

    /// Whether GetRecords answers lose their ChildShards (so that readers must look the
    /// children up).
    pub fn strip_child_shards(&self, strip: bool) {
        self.shared
            .strip_child_shards
            .store(strip, Ordering::SeqCst);
    }

    /// The operation of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The body of every request so far.
    pub fn bodies(&self) -> Vec<Bytes> {
        let bodies = self.shared.bodies.lock().unwrap();
        bodies.iter().map(|(_, body)| body.clone()).collect()
    }

    /// The body of every request of `operation` so far.
    pub fn bodies_of(&self, operation: &str) -> Vec<Bytes> {
        let bodies = self.shared.bodies.lock().unwrap();
        bodies
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// The `X-Amz-Date` of every request so far.
    pub fn dates(&self) -> Vec<String> {
        self.shared.dates.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// A JSON client of the proxy whose DescribeStreamSummary, PutRecords and CreateStream
    /// calls retry `retries` times within milliseconds.
    pub fn client(&self, retries: u32) -> Client {
        let mut builder = client_builder(&self.url)
            .attempt_timeout(Duration::from_secs(10))
            .total_timeout(Duration::from_secs(30));
        for operation in ["DescribeStreamSummary", "PutRecords", "CreateStream"] {
            builder = builder.retry_policy(operation, fast_retries(retries));
        }
        builder.build().unwrap()
    }
}

async fn handle(
    request: http::Request<Incoming>,
    shared: Arc<Shared>,
    goaway: Arc<tokio::sync::Notify>,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let Shared {
        faults,
        faults_by_operation,
        strip_child_shards,
        requests,
        bodies,
        dates,
        forward,
        upstream,
        ..
    } = shared.as_ref();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let operation = header("x-amz-target")
        .trim_start_matches("Kinesis_20131202.")
        .to_owned();
    dates.lock().unwrap().push(header("x-amz-date"));
    requests.lock().unwrap().push(operation.clone());
    let fault = faults_by_operation
        .lock()
        .unwrap()
        .get_mut(&operation)
        .and_then(VecDeque::pop_front)
        .or_else(|| faults.lock().unwrap().pop_front());
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    bodies
        .lock()
        .unwrap()
        .push((operation.clone(), body.clone()));
    let send = |body: Bytes| {
        let mut upstream_request = http::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{upstream}/"));
        for (name, value) in &parts.headers {
            // The body may change, and hyper sets its length.
            if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                upstream_request = upstream_request.header(name, value);
            }
        }
        let upstream_request = upstream_request.body(Full::new(body)).unwrap();
        let forward = forward.clone();
        async move {
            let response = forward
                .request(upstream_request)
                .await
                .map_err(std::io::Error::other)?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            Ok::<_, std::io::Error>(http::Response::from_parts(parts, body))
        }
    };
    let mut response = match fault {
        None => send(body).await?,
        Some(Fault::Error(status, code)) => http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-RequestId", "injected-request")
            .body(Bytes::from(format!(
                r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#
            )))
            .unwrap(),
        Some(Fault::Reset) => return Err(std::io::Error::other("reset by the test proxy")),
        Some(Fault::LoseResponse) => {
            send(body).await?;
            return Err(std::io::Error::other(
                "forwarded, then reset by the test proxy",
            ));
        }
        Some(Fault::GoAway) => {
            goaway.notify_one();
            send(body).await?
        }
        Some(Fault::Skewed(ahead)) => http::Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "date",
                httpdate::fmt_http_date(std::time::SystemTime::now() + ahead),
            )
            .body(Bytes::from_static(
                br#"{"__type":"RequestTimeTooSkewed","message":"injected by the test proxy"}"#,
            ))
            .unwrap(),
        Some(Fault::Reply(json)) => http::Response::builder()
            .header("content-type", "application/x-amz-json-1.1")
            .body(Bytes::from(json))
            .unwrap(),
        Some(Fault::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            send(body).await?
        }
        Some(Fault::FailEntries(failed, code)) => fail_entries(body, &failed, code, send).await?,
    };
    if operation == "GetRecords"
        && strip_child_shards.load(Ordering::SeqCst)
        && response.status().is_success()
    {
        let mut output = GetRecordsOutput::decode_body(response.body().clone(), Protocol::Json)
            .map_err(std::io::Error::other)?;
        output.child_shards = None;
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        *response.body_mut() = Bytes::from(output.encode_body(Protocol::Json));
    }
    Ok(response.map(Full::new))
}

/// Forwards a PutRecords request without the entries at `failed`, and answers those with
/// `code`.
async fn fail_entries<F, Fut>(
    body: Bytes,
    failed: &[usize],
    code: &str,
    send: F,
) -> Result<http::Response<Bytes>, std::io::Error>
where
    F: FnOnce(Bytes) -> Fut,
    Fut: Future<Output = Result<http::Response<Bytes>, std::io::Error>>,
{
    let mut input = PutRecordsInput::decode_body(body, Protocol::Json).unwrap();
    let all = std::mem::take(&mut input.records);
    let total = all.len();
    let kept: Vec<_> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !failed.contains(i))
        .map(|(_, entry)| entry)
        .collect();
    let (mut parts, mut written) = if kept.is_empty() {
        let (parts, ()) = http::Response::builder()
            .header("content-type", "application/x-amz-json-1.1")
            .body(())
            .unwrap()
            .into_parts();
        (parts, Vec::new().into_iter())
    } else {
        input.records = kept;
        let response = send(Bytes::from(input.encode_body(Protocol::Json))).await?;
        let (parts, body) = response.into_parts();
        let output = PutRecordsOutput::decode_body(body.clone(), Protocol::Json)
            .unwrap_or_else(|e| panic!("{e}: {} {body:?}", parts.status));
        (parts, output.records.into_iter())
    };
    // The body changes length.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let records = (0..total)
        .map(|i| {
            if failed.contains(&i) {
                let mut entry = PutRecordsResultEntry::new();
                entry.error_code = Some(code.into());
                entry.error_message = Some("injected by the test proxy".into());
                entry
            } else {
                written.next().unwrap()
            }
        })
        .collect();
    let mut output = PutRecordsOutput::new(records);
    output.failed_record_count = Some(failed.len() as i32);
    Ok(http::Response::from_parts(
        parts,
        Bytes::from(output.encode_body(Protocol::Json)),
    ))
}
