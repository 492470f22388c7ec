//! One SubscribeToShard subscription: the response body read chunk by chunk and decoded into
//! events.

use kds_client::{Client, ResponseStream};
use kds_proto::eventstream::{SubscribeToShardDecoder, SubscribeToShardItem};
use kds_proto::model::{SubscribeToShardEvent, SubscribeToShardInput};

use crate::error::Error;

/// A subscription of a consumer to a shard, read event by event.
#[derive(Debug)]
pub struct Subscription {
    body: ResponseStream,
    decoder: SubscribeToShardDecoder,
    ended: bool,
}

impl Subscription {
    /// Subscribes: sends the request and waits for the response head (the client's attempt
    /// timeout applies). Not retried.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Client`](crate::ErrorKind::Client) when the request is refused
    /// (ResourceInUse within five seconds of another subscription, an unknown consumer or
    /// shard…), times out or cannot be sent.
    pub async fn open(client: &Client, request: &SubscribeToShardInput) -> Result<Self, Error> {
        let body = client.open_stream(request).await.map_err(Error::client)?;
        let decoder = SubscribeToShardDecoder::new(body.protocol());
        Ok(Self {
            body,
            decoder,
            ended: false,
        })
    }

    /// The next event; `None` when the subscription ended normally (the service closes it
    /// after about five minutes, or at the end of a closed shard: the last event then carries
    /// no continuation sequence number).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Service`](crate::ErrorKind::Service) for an exception or error message,
    /// [`ErrorKind::Decode`](crate::ErrorKind::Decode) for a corrupt frame or payload, and
    /// [`ErrorKind::Client`](crate::ErrorKind::Client) when the connection breaks. The
    /// subscription is over after any error.
    pub async fn next_event(&mut self) -> Result<Option<SubscribeToShardEvent>, Error> {
        loop {
            if self.ended {
                return Ok(None);
            }
            match self.decoder.next_item() {
                Ok(Some(SubscribeToShardItem::Event(event))) => return Ok(Some(event)),
                Ok(Some(
                    SubscribeToShardItem::Exception(error) | SubscribeToShardItem::Error(error),
                )) => {
                    self.ended = true;
                    return Err(Error::service(error));
                }
                // The initial response carries nothing.
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => {
                    self.ended = true;
                    return Err(Error::decode(error));
                }
            }
            match self.body.next_chunk().await {
                Ok(Some(chunk)) => self.decoder.feed(chunk),
                Ok(None) => {
                    self.ended = true;
                    self.decoder.finish().map_err(Error::decode)?;
                    return Ok(None);
                }
                Err(error) => {
                    self.ended = true;
                    return Err(Error::client(error));
                }
            }
        }
    }

    /// Messages of unknown kinds skipped so far.
    pub fn skipped(&self) -> u64 {
        self.decoder.skipped()
    }

    /// Bytes received and not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.decoder.buffered_len()
    }
}
