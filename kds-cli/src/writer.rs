//! Writing user records to a stream for `kds put` and `kds demo`: kds-stream's
//! [`RecordWriter`] (PutRecords batches, KPL aggregates per shard that follow splits and merges,
//! failed records retried), with every record counted as written or failed, records the stream
//! would refuse counted as failed instead of stopping the writing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kds_agg::{AggregatorConfig, ProducerRecord};
use kds_client::Client;
use kds_proto::types::PartitionKey;
use kds_stream::{ErrorKind, RecordWriter, WriterConfig};

use crate::connect::StreamInfo;
use crate::failure::Failure;

/// How long a partly filled batch waits for more records, unless told otherwise.
pub(crate) const LINGER: Duration = Duration::from_millis(100);

/// What a [`Writer`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// User records written.
    pub(crate) written: u64,
    /// User records not written (refused before sending, or failed for good).
    pub(crate) failed: u64,
    /// Kinesis records sent (aggregates count once).
    pub(crate) kinesis_records: u64,
    /// Why the first failed record failed.
    pub(crate) first_failure: Option<String>,
}

/// Writes user records to one stream.
pub(crate) struct Writer {
    records: RecordWriter,
    /// The largest record the stream takes: data and partition key.
    max_record_size: usize,
    /// Records refused before sending.
    refused: u64,
    first_failure: Option<String>,
}

impl Writer {
    /// A writer to `stream`; with `aggregate`, user records are packed into KPL aggregates, one
    /// per open shard (so each lands on the shard its own key maps to). A record waits at most
    /// `linger` for its batch, and for its aggregate, to fill. `in_flight` requests may be sent
    /// at once: with one, each partition key's records are written in the order they were
    /// added, unless a record is retried.
    pub(crate) async fn open(
        client: Client,
        stream: &StreamInfo,
        aggregate: bool,
        linger: Duration,
        in_flight: usize,
    ) -> Result<Self, Failure> {
        let mut config = WriterConfig::default();
        config.flush_after = linger;
        config.max_in_flight = in_flight;
        config.aggregation =
            aggregate.then(|| AggregatorConfig::default().with_max_buffered_time(linger));
        let records = RecordWriter::open(client, stream.id.clone(), config).await?;
        Ok(Self {
            records,
            max_record_size: stream.limits.max_record_size,
            refused: 0,
            first_failure: None,
        })
    }

    /// The largest record the stream takes: data and partition key.
    pub(crate) fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// The counts so far.
    pub(crate) fn totals(&self) -> Totals {
        let stats = self.records.stats();
        Totals {
            written: stats.rows,
            failed: stats.failed + self.refused,
            kinesis_records: stats.kinesis_records,
            first_failure: self.first_failure.clone(),
        }
    }

    /// When [`flush_due`](Self::flush_due) has work to do: a batch's linger, an aggregate's
    /// buffering time or a retry's backoff running out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.records.deadline()
    }

    /// Adds a user record: `aggregate` packs it into a KPL aggregate when the writer
    /// aggregates. Sends requests as they fill.
    pub(crate) async fn add(
        &mut self,
        key: &str,
        data: Bytes,
        aggregate: bool,
    ) -> Result<(), Failure> {
        // Checked here, once, also for records that travel inside an aggregate.
        if let Err(e) = PartitionKey::new(key) {
            self.refuse(format!("partition key `{key}`: {e}"));
            return Ok(());
        }
        let size = data.len() + key.len();
        if size > self.max_record_size {
            self.refuse(format!(
                "a record of {size} bytes (data and partition key) is over the limit of {} bytes",
                self.max_record_size
            ));
            return Ok(());
        }
        let record = ProducerRecord::new(key, data);
        let written = if aggregate {
            self.records.write(record).await
        } else {
            self.records.write_alone(record).await
        };
        match written {
            Ok(()) => Ok(()),
            // The record itself is at fault (its key, its size): counted, and the rest goes on.
            Err(error) if error.kind() == ErrorKind::Encode => {
                self.refuse(Failure::from(error).to_string());
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Sends what is due (see [`deadline`](Self::deadline)).
    pub(crate) async fn flush_due(&mut self) -> Result<(), Failure> {
        Ok(self.records.send_due().await?)
    }

    /// Sends everything buffered and returns the counts.
    pub(crate) async fn finish(mut self) -> (Totals, Option<Failure>) {
        match self.records.flush().await {
            Ok(()) => (self.totals(), None),
            // Some records failed for good: counted, and the first cause is kept.
            Err(error) if error.kind() == ErrorKind::Write && self.records.pending_rows() == 0 => {
                self.first_failure
                    .get_or_insert_with(|| Failure::from(error).to_string());
                (self.totals(), None)
            }
            Err(error) => {
                let failure = Failure::from(error);
                let why = failure.to_string();
                (self.abandon(&why), Some(failure))
            }
        }
    }

    /// Gives up on what is buffered after `why` stopped the writing: every record not yet
    /// written counts as failed. Returns the counts.
    pub(crate) fn abandon(mut self, why: &str) -> Totals {
        let unsent = self.records.pending_rows();
        if unsent > 0 {
            self.refused += unsent;
            self.first_failure
                .get_or_insert_with(|| format!("not sent: {why}"));
        }
        self.totals()
    }

    /// Counts a user record that cannot be written, and why.
    pub(crate) fn refuse(&mut self, why: String) {
        self.refused += 1;
        self.first_failure.get_or_insert(why);
    }
}
