//! Consumer registration against kinesis-local (ferrokinesis 0.7 leaves the required StreamARN
//! out of DescribeStreamConsumer, which registration reads); skipped, with a notice, without
//! node.

use std::time::Duration;

use kds_client::credentials::Credentials;
use kds_client::{Client, HttpVersion, Protocol};
use kds_efo::{ConsumerConfig, Registration, ensure_consumer, release_consumer};
use kds_proto::ErrorCode;
use kds_proto::model::{
    CreateStreamInput, DescribeStreamConsumerInput, DescribeStreamSummaryInput,
};
use kds_proto::types::{ConsumerArn, ConsumerName, StreamName, StreamStatus};

use kds_test_support as support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_eager_and_none_registration() {
    let Some(local) = support::KinesisLocal::get() else {
        return;
    };
    let client = Client::builder()
        .region("us-east-1")
        .endpoint(&local.plain_url)
        .protocol(Protocol::Json)
        .http_version(HttpVersion::Http1)
        .credentials(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .build()
        .unwrap();
    let stream = StreamName::new("efo-consumers").unwrap();
    let mut create = CreateStreamInput::new(stream.clone());
    create.shard_count = Some(1);
    client.send(&create).await.unwrap();
    let mut describe = DescribeStreamSummaryInput::new();
    describe.stream_name = Some(stream);
    let arn = loop {
        let summary = client
            .send(&describe)
            .await
            .unwrap()
            .stream_description_summary;
        if summary.stream_status == StreamStatus::Active {
            break summary.stream_arn;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut config = ConsumerConfig::default();
    config.poll_interval = Duration::from_millis(50);
    config.register_timeout = Duration::from_secs(20);
    config.deregister_timeout = Duration::from_secs(20);
    let exists = |consumer: ConsumerArn| {
        let client = client.clone();
        async move {
            let mut request = DescribeStreamConsumerInput::new();
            request.consumer_arn = Some(consumer);
            match client.send(&request).await {
                Ok(_) => true,
                Err(e) if e.error_code() == Some(ErrorCode::ResourceNotFound) => false,
                Err(e) => panic!("{e}"),
            }
        }
    };

    // LAZY: registered and waited for, found again, deregistered on release.
    let lazy = Registration::Lazy(ConsumerName::new("lazy-reader").unwrap());
    let consumer = ensure_consumer(&client, &arn, &lazy, &config)
        .await
        .unwrap();
    assert_eq!(
        ensure_consumer(&client, &arn, &lazy, &config)
            .await
            .unwrap(),
        consumer
    );
    release_consumer(&client, &consumer, &lazy, &config)
        .await
        .unwrap();
    assert!(!exists(consumer).await);

    // EAGER: registered, never deregistered here.
    let eager = Registration::Eager(ConsumerName::new("eager-reader").unwrap());
    let consumer = ensure_consumer(&client, &arn, &eager, &config)
        .await
        .unwrap();
    release_consumer(&client, &consumer, &eager, &config)
        .await
        .unwrap();
    assert!(exists(consumer.clone()).await);

    // NONE: the given ARN, as it is.
    let none = Registration::None(consumer.clone());
    assert_eq!(
        ensure_consumer(&client, &arn, &none, &config)
            .await
            .unwrap(),
        consumer
    );
    release_consumer(&client, &consumer, &none, &config)
        .await
        .unwrap();
    assert!(exists(consumer).await);
}
