//! Stream consumers: found or registered and waited for until ACTIVE (the connector's LAZY and
//! EAGER registration), or taken as given (NONE); deregistered on a clean stop for LAZY only.

use std::time::Duration;

use kds_client::Client;
use kds_proto::ErrorCode;
use kds_proto::model::{
    DeregisterStreamConsumerInput, DescribeStreamConsumerInput, RegisterStreamConsumerInput,
};
use kds_proto::types::{ConsumerArn, ConsumerName, ConsumerStatus, StreamArn};
use tokio::time::Instant;

use crate::error::Error;

/// How the consumer of a reader comes to exist (`scan.stream.efo.registration`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Registered (or found) when reading starts, deregistered on a clean stop. The default.
    Lazy(ConsumerName),
    /// Registered (or found) when the table is set up, never deregistered.
    Eager(ConsumerName),
    /// Registered elsewhere: its ARN (`scan.stream.efo.consumerarn.<stream>`); never
    /// registered nor deregistered here.
    None(ConsumerArn),
}

/// The waits of registration and deregistration. Each call's own retries are the client's
/// (DescribeStreamConsumer, RegisterStreamConsumer and DeregisterStreamConsumer policies).
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// How long a registered consumer may take to become ACTIVE
    /// (`registerstreamconsumer.timeout`, 60 s).
    pub register_timeout: Duration,
    /// How long a deregistered consumer may take to go away
    /// (`deregisterstreamconsumer.timeout`, 60 s).
    pub deregister_timeout: Duration,
    /// The pause between checks of the consumer's status.
    pub poll_interval: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            register_timeout: Duration::from_secs(60),
            deregister_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

fn not_found(error: &kds_client::Error) -> bool {
    error.error_code() == Some(ErrorCode::ResourceNotFound)
}

fn in_use(error: &kds_client::Error) -> bool {
    error.error_code() == Some(ErrorCode::ResourceInUse)
}

/// The ARN of an ACTIVE consumer of `stream` as `registration` says: for LAZY and EAGER the
/// consumer of that name is found, or registered, and waited for until ACTIVE; for NONE the
/// given ARN is returned as it is.
///
/// # Errors
///
/// The client's error, or a timeout when the consumer does not become ACTIVE within
/// [`ConsumerConfig::register_timeout`].
pub async fn ensure_consumer(
    client: &Client,
    stream: &StreamArn,
    registration: &Registration,
    config: &ConsumerConfig,
) -> Result<ConsumerArn, Error> {
    let name = match registration {
        Registration::None(arn) => return Ok(arn.clone()),
        Registration::Lazy(name) | Registration::Eager(name) => name,
    };
    let deadline = Instant::now() + config.register_timeout;
    let mut describe = DescribeStreamConsumerInput::new();
    describe.stream_arn = Some(stream.clone());
    describe.consumer_name = Some(name.clone());
    loop {
        match client.send(&describe).await {
            Ok(found) => {
                let consumer = found.consumer_description;
                if consumer.consumer_status == ConsumerStatus::Active {
                    return Ok(consumer.consumer_arn);
                }
            }
            Err(e) if not_found(&e) => {
                let register = RegisterStreamConsumerInput::new(stream.clone(), name.clone());
                match client.send(&register).await {
                    Ok(_) => {}
                    // Registered by another reader meanwhile, or being deleted: wait.
                    Err(e) if in_use(&e) => {}
                    Err(e) => return Err(Error::client(e)),
                }
            }
            Err(e) => return Err(Error::client(e)),
        }
        if Instant::now() >= deadline {
            return Err(Error::timeout(format!(
                "consumer `{}` did not become ACTIVE within {:?}",
                name.as_str(),
                config.register_timeout
            )));
        }
        tokio::time::sleep(config.poll_interval).await;
    }
}

/// Deregisters the consumer of a LAZY registration and waits until it is gone; EAGER and NONE
/// consumers are left alone (the connector's rule).
///
/// # Errors
///
/// The client's error, or a timeout when the consumer is still there after
/// [`ConsumerConfig::deregister_timeout`].
pub async fn release_consumer(
    client: &Client,
    consumer: &ConsumerArn,
    registration: &Registration,
    config: &ConsumerConfig,
) -> Result<(), Error> {
    if !matches!(registration, Registration::Lazy(_)) {
        return Ok(());
    }
    let mut deregister = DeregisterStreamConsumerInput::new();
    deregister.consumer_arn = Some(consumer.clone());
    match client.send(&deregister).await {
        Ok(_) => {}
        Err(e) if not_found(&e) => return Ok(()),
        Err(e) => return Err(Error::client(e)),
    }
    let deadline = Instant::now() + config.deregister_timeout;
    let mut describe = DescribeStreamConsumerInput::new();
    describe.consumer_arn = Some(consumer.clone());
    loop {
        match client.send(&describe).await {
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(Error::client(e)),
            Ok(_) if Instant::now() >= deadline => {
                return Err(Error::timeout(format!(
                    "consumer {} was still there {:?} after it was deregistered",
                    consumer.as_str(),
                    config.deregister_timeout
                )));
            }
            Ok(_) => tokio::time::sleep(config.poll_interval).await,
        }
    }
}
