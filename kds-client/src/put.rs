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
    /// policy's retries. Entries that failed for good, or whose retries ran out, are returned
    /// with their error; nothing is dropped silently.
    ///
    /// Kinesis may write a record twice when a response is lost and the request is sent again
    /// (the API is at least once).
    ///
    /// # Errors
    ///
    /// The error of the first request when it fails as a whole (nothing is known to be written
    /// then). A later request that fails as a whole ends the call with `Ok`, its error on the
    /// entries it carried.
    pub async fn put_records_retrying(
        &self,
        request: &PutRecordsInput,
        ordering: PutOrdering,
    ) -> Result<PutRecordsOutcome, Error> {
        let policy = self.retry_policy("PutRecords");
        let total = request.records.len();
        let mut results: Vec<Option<PutRecordsResultEntry>> = vec![None; total];
        // Unwritten entries, in request order, with their last failure.
        let mut pending: Vec<usize> = (0..total).collect();
        let mut last_failure: Vec<Option<PutRecordsResultEntry>> = vec![None; total];
        let mut requests = 0;
        let mut retries = 0;
        while !pending.is_empty() {
            let batch = match ordering {
                PutOrdering::Unordered => pending.clone(),
                PutOrdering::PerPartitionKey => {
                    let mut keys = HashSet::new();
                    pending
                        .iter()
                        .copied()
                        .filter(|&i| keys.insert(request.records[i].partition_key.as_str()))
                        .collect()
                }
            };
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
                    .in_call("PutRecords", 1))
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
                    for &i in &pending {
                        let mut failed = PutRecordsResultEntry::new();
                        failed.error_code = Some(code.clone());
                        failed.error_message = Some(error.to_string());
                        results[i] = Some(failed);
                    }
                    break;
                }
            };
            let mut retry_needed = false;
            for (&i, entry) in batch.iter().zip(output.records) {
                match entry.error_class() {
                    None => results[i] = Some(entry),
                    Some(ErrorClass::Throttling | ErrorClass::Transient) => {
                        last_failure[i] = Some(entry);
                        retry_needed = true;
                    }
                    Some(_) => results[i] = Some(entry),
                }
            }
            pending.retain(|&i| results[i].is_none());
            if pending.is_empty() {
                break;
            }
            // Under per-key ordering a batch may leave records unsent without failures.
            if retry_needed {
                if retries >= policy.max_retries {
                    break;
                }
                tokio::time::sleep(policy.backoff(retries, fastrand::f64())).await;
                retries += 1;
            }
        }
        let entries = results
            .into_iter()
            .zip(last_failure)
            .map(|(result, failure)| {
                result.or(failure).unwrap_or_else(|| {
                    // Never sent: its key's earlier record failed for good first.
                    let mut unsent = PutRecordsResultEntry::new();
                    unsent.error_code = Some("NotSent".to_owned());
                    unsent.error_message = Some(
                        "an earlier record with the same partition key was not written".to_owned(),
                    );
                    unsent
                })
            })
            .collect();
        Ok(PutRecordsOutcome { entries, requests })
    }
}
