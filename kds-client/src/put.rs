//! PutRecords that retries only the entries that failed, optionally keeping the order of each
//! partition key's records.

use std::collections::HashSet;

use kds_proto::ErrorClass;
use kds_proto::model::{PutRecordsInput, PutRecordsResultEntry};

use crate::client::Client;
use crate::error::{Error, ErrorKind};

/// How [`Client::put_records_retrying`] orders the records it retries.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PutOrdering {
    /// Every unwritten record goes in the next request. When a record fails and a later record
    /// with its key does not, the later one is written first.
    #[default]
    Unordered,
    /// A record is sent only after every earlier record with its partition key was written: each
    /// request carries the earliest unwritten record of each key. Keeps each key's order at the
    /// cost of one request per record for records sharing a key.
    PerPartitionKey,
}

/// What became of each entry of a [`Client::put_records_retrying`] call.
#[derive(Clone, Debug, PartialEq)]
pub struct PutRecordsOutcome {
    /// One result per entry, in the order of the request: a sequence number and shard for
    /// written entries, the last error code and message for the others.
    pub entries: Vec<PutRecordsResultEntry>,
    /// The PutRecords requests made.
    pub requests: u32,
}

impl PutRecordsOutcome {
    /// The entries that were not written, with their index in the request.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &PutRecordsResultEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.is_failure())
    }
}

impl Client {
    /// Writes `request`'s records, resending only those that failed with a retryable error
    /// (throttling, internal failure) after a full-jitter backoff, up to the PutRecords retry
    /// policy's retries per call. Records that failed for good, whose retries ran out, or that
    /// were not sent (see [`PutOrdering::PerPartitionKey`]) come back with an error code and
    /// message; nothing is dropped silently. Each request has the client's total timeout.
    ///
    /// Kinesis may write a record twice when a response is lost and the request is sent again
    /// (the API is at least once).
    ///
    /// # Errors
    ///
    /// The error of the first request when it fails as a whole: which of its records were
    /// written is then unknown (a lost response may hide writes). A later request that fails as
    /// a whole ends the call with `Ok`, its error on the records it carried.
    pub async fn put_records_retrying(
        &self,
        request: &PutRecordsInput,
        ordering: PutOrdering,
    ) -> Result<PutRecordsOutcome, Error> {
        let policy = self.retry_policy("PutRecords");
        let total = request.records.len();
        let key = |i: usize| request.records[i].partition_key.as_str();
        let mut results: Vec<Option<PutRecordsResultEntry>> = vec![None; total];
        let mut requests = 0;
        let mut retries = 0;
        loop {
            // Unwritten records, in request order.
            let pending: Vec<usize> = (0..total).filter(|&i| results[i].is_none()).collect();
            let batch: Vec<usize> = match ordering {
                PutOrdering::Unordered => pending,
                PutOrdering::PerPartitionKey => {
                    let mut keys = HashSet::new();
                    pending
                        .into_iter()
                        .filter(|&i| keys.insert(key(i)))
                        .collect()
                }
            };
            if batch.is_empty() {
                break;
            }
            let mut attempt = request.clone();
            attempt.records = batch.iter().map(|&i| request.records[i].clone()).collect();
            requests += 1;
            let sent = self.send(&attempt).await.and_then(|output| {
                if output.records.len() == batch.len() {
                    Ok(output)
                } else {
                    Err(Error::new(
                        ErrorKind::Decode,
                        format!(
                            "the response has {} results for {} records",
                            output.records.len(),
                            batch.len()
                        ),
                    )
                    .in_operation("PutRecords"))
                }
            });
            let output = match sent {
                Ok(output) => output,
                Err(error) if requests == 1 => return Err(error),
                Err(error) => {
                    let code = error
                        .service_error()
                        .map_or("RequestFailed", |e| e.code())
                        .to_owned();
                    for &i in &batch {
                        results[i] = Some(failure(&code, &error.to_string()));
                    }
                    for result in results.iter_mut().filter(|r| r.is_none()) {
                        *result = Some(failure(
                            "NotSent",
                            "the request before it failed as a whole",
                        ));
                    }
                    break;
                }
            };
            let may_retry = retries < policy.max_retries;
            let mut retrying = false;
            let mut blocked = Vec::new();
            for (&i, entry) in batch.iter().zip(output.records) {
                match entry.error_class() {
                    None => results[i] = Some(entry),
                    Some(ErrorClass::Throttling | ErrorClass::Transient) if may_retry => {
                        retrying = true;
                    }
                    Some(_) => {
                        results[i] = Some(entry);
                        blocked.push(i);
                    }
                }
            }
            if ordering == PutOrdering::PerPartitionKey {
                // Later records of a key whose record failed for good are not sent: the key's
                // order could not be kept.
                for i in blocked {
                    let stopped = key(i);
                    for (later, result) in results.iter_mut().enumerate().skip(i + 1) {
                        if result.is_none() && key(later) == stopped {
                            *result = Some(failure(
                                "NotSent",
                                "an earlier record with the same partition key was not written",
                            ));
                        }
                    }
                }
            }
            if retrying {
                tokio::time::sleep(policy.backoff(retries, fastrand::f64())).await;
                retries += 1;
            }
        }
        let entries = results
            .into_iter()
            // Every record has a result when the loop ends.
            .map(|result| result.unwrap_or_else(|| failure("NotSent", "not sent")))
            .collect();
        Ok(PutRecordsOutcome { entries, requests })
    }
}

/// A result entry for a record that was not written.
fn failure(code: &str, message: &str) -> PutRecordsResultEntry {
    let mut entry = PutRecordsResultEntry::new();
    entry.error_code = Some(code.to_owned());
    entry.error_message = Some(message.to_owned());
    entry
}
