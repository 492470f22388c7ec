//! DynamoDB's JSON protocol (awsJson1.0) over the client's transport, signing and retries: the
//! few calls a lease table makes, with JSON bodies in and out.

use bytes::Bytes;
use kds_proto::{Protocol, ResponseError, ServiceError};

use crate::client::{Call, Client};
use crate::endpoint::Endpoint;
use crate::error::Error;

/// A DynamoDB client made from a Kinesis [`Client`] ([`Client::dynamodb`]): the same region,
/// credentials, timeouts and TLS settings, signed for `dynamodb`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoDbClient {
    client: Client,
}

impl DynamoDbClient {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &Endpoint {
        self.client.endpoint()
    }

    /// Calls `operation` (`PutItem`, say) with a JSON request body and returns the response
    /// body. Throttling, transient errors, timeouts and transport failures are retried as
    /// Kinesis calls are, per the operation's [`RetryPolicy`](crate::RetryPolicy) (three
    /// retries from 300 ms unless the builder set one); a clock-skew error once, re-signed.
    ///
    /// # Errors
    ///
    /// `Service` with DynamoDB's error (`ConditionalCheckFailedException`,
    /// `ResourceNotFoundException`, …) and its request id; `Timeout`, `Transport` or
    /// `Credentials` as for [`Client::send`].
    pub async fn call(&self, operation: &'static str, body: Bytes) -> Result<Bytes, Error> {
        let target = format!("DynamoDB_20120810.{operation}");
        let call = Call {
            operation,
            target: &target,
            stream: "",
            shard: "",
        };
        self.client
            .call_with(&call, &body, |response, _| {
                if response.status.is_success() {
                    Ok(response.body)
                } else {
                    Err(ResponseError::Service(ServiceError::from_response(
                        response.status,
                        &response.headers,
                        &response.body,
                        Protocol::Json,
                    )))
                }
            })
            .await
    }
}
