//! Reading every shard of a stream by polling or by enhanced fan-out, from a starting position,
//! with the consumer that enhanced fan-out needs registered and released around the read.

use std::future::Future;
use std::pin::Pin;

use kds_client::{Batch, Client, PollConfig, PollingReader, StreamId};
use kds_efo::{ConsumerConfig, ReaderConfig, Registration, StreamReader};
use kds_proto::ErrorCode;
use kds_proto::model::{
    DeregisterStreamConsumerInput, DescribeStreamConsumerInput, GetShardIteratorInput, Shard,
    StartingPosition,
};
use kds_proto::types::{ConsumerArn, ConsumerName, ShardIteratorType, StreamArn, Timestamp};

use crate::cli::Start;
use crate::connect::StreamInfo;
use crate::failure::Failure;

/// Reads a stream's shards, children after parents.
#[derive(Debug)]
pub(crate) enum StreamRead {
    Polling(PollingReader),
    FanOut(StreamReader),
}

impl StreamRead {
    /// What enhanced fan-out mended on the way: records the service sent again after a
    /// resubscription (dropped), events that broke the protocol and subscriptions that ended
    /// without any event (each followed by a new subscription).
    pub(crate) fn mended(&self) -> Mended {
        match self {
            Self::Polling(_) => Mended::default(),
            Self::FanOut(reader) => Mended {
                repeats_dropped: reader.repeats_dropped(),
                protocol_breaks: reader.protocol_breaks(),
                empty_subscriptions: reader.empty_subscriptions(),
            },
        }
    }

    /// The next batch of any shard; `None` when every shard has ended (or is at its tip when
    /// reading stops there). Cancel safe.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<Batch>, Failure> {
        Ok(match self {
            Self::Polling(reader) => reader.next_batch().await?,
            Self::FanOut(reader) => reader.next_batch().await?,
        })
    }
}

/// What a read mended on the way (see [`StreamRead::mended`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mended {
    pub(crate) repeats_dropped: u64,
    pub(crate) protocol_breaks: u64,
    pub(crate) empty_subscriptions: u64,
}

/// A consumer used for enhanced fan-out, and whether kds registered it (then kds deregisters
/// it when done).
#[derive(Debug)]
pub(crate) struct FanOutConsumer {
    pub(crate) arn: ConsumerArn,
    registration: Registration,
}

impl FanOutConsumer {
    /// The consumer called `name` of `stream`: found, or registered and waited for until
    /// ACTIVE. `None` when `stop` resolved first (a consumer kds registered is then
    /// deregistered).
    pub(crate) async fn ensure(
        client: &Client,
        stream: &StreamArn,
        name: &str,
        stop: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<Self>, Failure> {
        let name = ConsumerName::new(name)
            .map_err(|e| Failure::usage(format!("bad consumer name `{name}`: {e}")))?;
        let mut describe = DescribeStreamConsumerInput::new();
        describe.stream_arn = Some(stream.clone());
        describe.consumer_name = Some(name.clone());
        // Someone else's consumer is used and left alone; one kds registers, kds removes.
        let registration = match client.send(&describe).await {
            Ok(found) => Registration::None(found.consumer_description.consumer_arn),
            Err(e) if e.error_code() == Some(ErrorCode::ResourceNotFound) => {
                Registration::Lazy(name.clone())
            }
            Err(e) => return Err(e.into()),
        };
        let config = ConsumerConfig::default();
        let ensured = tokio::select! {
            ensured = kds_efo::ensure_consumer(client, stream, &registration, &config) => Some(ensured),
            () = stop => None,
        };
        match ensured {
            Some(Ok(arn)) => Ok(Some(Self { arn, registration })),
            failed => {
                // Registered, but not ACTIVE in time, or interrupted: do not leave it behind,
                // and say so when it stays (it is billed).
                let mut left = None;
                if matches!(registration, Registration::Lazy(_)) {
                    let mut deregister = DeregisterStreamConsumerInput::new();
                    deregister.stream_arn = Some(stream.clone());
                    deregister.consumer_name = Some(name.clone());
                    if let Err(e) = client.send(&deregister).await
                        && e.error_code() != Some(ErrorCode::ResourceNotFound)
                    {
                        left = Some(format!(
                            "consumer {} stays registered (and billed): deregistering it failed: {e}",
                            name.as_str()
                        ));
                    }
                }
                match (failed, left) {
                    (Some(Err(error)), Some(left)) => {
                        Err(Failure::new(format!("{}; {left}", Failure::from(error))))
                    }
                    (Some(Err(error)), None) => Err(error.into()),
                    (_, Some(left)) => Err(Failure::new(left)),
                    (_, None) => Ok(None),
                }
            }
        }
    }

    /// Deregisters the consumer if kds registered it.
    pub(crate) async fn release(&self, client: &Client) -> Result<(), Failure> {
        kds_efo::release_consumer(
            client,
            &self.arn,
            &self.registration,
            &ConsumerConfig::default(),
        )
        .await?;
        Ok(())
    }
}

/// Reads `stream` from `start`: by enhanced fan-out as `consumer`, else by polling. With
/// `end_at`, only what the stream held at that time is read.
pub(crate) async fn open(
    client: &Client,
    stream: &StreamInfo,
    start: &Start,
    consumer: Option<&FanOutConsumer>,
    end_at: Option<Timestamp>,
) -> Result<StreamRead, Failure> {
    let (position, shards) = match start {
        Start::TrimHorizon => (
            StartingPosition::new(ShardIteratorType::TrimHorizon),
            stream.shards.clone(),
        ),
        Start::Latest => (
            StartingPosition::new(ShardIteratorType::Latest),
            stream.shards.clone(),
        ),
        Start::AtTimestamp(time) => (StartingPosition::at_timestamp(*time), stream.shards.clone()),
        Start::AtSequence(sequence) => {
            let position = StartingPosition::at_sequence_number(sequence.clone());
            let shards = shard_of(client, stream, &position).await?;
            (position, shards)
        }
    };
    Ok(match consumer {
        Some(consumer) => {
            let mut config = ReaderConfig::default();
            config.end_at = end_at;
            StreamRead::FanOut(StreamReader::new(
                client.clone(),
                stream.id.clone(),
                consumer.arn.clone(),
                &shards,
                &position,
                config,
            ))
        }
        None => {
            let mut config = PollConfig::default();
            config.end_at = end_at;
            StreamRead::Polling(PollingReader::new(
                client.clone(),
                stream.id.clone(),
                &shards,
                &position,
                config,
            ))
        }
    })
}

/// The shard that holds the sequence number of `position`, found by asking each shard for an
/// iterator at it, with the shards that descend from it.
async fn shard_of(
    client: &Client,
    stream: &StreamInfo,
    position: &StartingPosition,
) -> Result<Vec<Shard>, Failure> {
    let sequence = position.sequence_number.as_ref().map_or("", |s| s.as_str());
    for shard in &stream.shards {
        let mut request =
            GetShardIteratorInput::new(shard.shard_id.clone(), position.r#type.clone());
        stream
            .id
            .set(&mut request.stream_name, &mut request.stream_arn);
        request.starting_sequence_number = position.sequence_number.clone();
        match client.send(&request).await {
            Ok(_) => return Ok(with_descendants(&stream.shards, shard)),
            Err(e) if e.error_code() == Some(ErrorCode::InvalidArgument) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let name = match &stream.id {
        StreamId::Name(name) => name.as_str(),
        StreamId::Arn(arn) => arn.as_str(),
    };
    Err(Failure::new(format!(
        "sequence number {sequence} is in no shard of stream `{name}`"
    )))
}

/// `root` and every shard that descends from it.
fn with_descendants(shards: &[Shard], root: &Shard) -> Vec<Shard> {
    let mut family = vec![root.clone()];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i].shard_id.clone();
        for shard in shards {
            let child = shard.parent_shard_id.as_ref() == Some(&parent)
                || shard.adjacent_parent_shard_id.as_ref() == Some(&parent);
            if child && !family.iter().any(|s| s.shard_id == shard.shard_id) {
                family.push(shard.clone());
            }
        }
        i += 1;
    }
    family
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kds_test_support::create_stream;
    use kds_test_support::proxy::{Fault, Proxy};

    use super::*;

    #[tokio::test]
    async fn a_consumer_left_registered_is_reported() {
        let proxy = Proxy::start().await;
        let arn = create_stream(&proxy.upstream, "efo", 1).await;
        // The consumer is not there (forwarded), gets registered, then its state cannot be
        // read, and it cannot be deregistered.
        proxy.script_for(
            "DescribeStreamConsumer",
            [
                Fault::Stall(Duration::ZERO),
                Fault::Error(400, "AccessDeniedException"),
            ],
        );
        proxy.script_for(
            "DeregisterStreamConsumer",
            [Fault::Error(400, "AccessDeniedException")],
        );
        let client = proxy.client(0);
        let stop = std::pin::pin!(std::future::pending::<()>());
        let failure = FanOutConsumer::ensure(&client, &arn, "reader", stop)
            .await
            .expect_err("the consumer could not be made ready");
        let message = failure.to_string();
        assert!(
            message.contains("consumer reader stays registered (and billed)"),
            "{message}"
        );
        assert!(message.contains("AccessDeniedException"), "{message}");
    }
}
