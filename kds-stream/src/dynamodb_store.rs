//! Leases in a DynamoDB table, for workers on several machines sharing a stream: one item per
//! shard under the KCL's attribute names, every write conditional on the lease counter.
//!
//! An item, as the KCL's `DynamoDBLeaseSerializer` lays it out (so KCL tooling and the AWS
//! console read it):
//!
//! | attribute | type | holds |
//! |---|---|---|
//! | `leaseKey` | S | the shard id (the table's hash key) |
//! | `leaseOwner` | S | the worker reading it; absent when nobody does |
//! | `leaseCounter` | N | bumped by every write |
//! | `checkpoint` | S | a sequence number, `TRIM_HORIZON`, `AT_TIMESTAMP` or `SHARD_END` |
//! | `checkpointSubSequenceNumber` | N | the user record's place in its KPL aggregate (0 outside one) |
//! | `parentShardId` | SS | the parents; absent when none |
//! | `startingHashKey`, `endingHashKey` | S | the hash key range |
//!
//! Two attributes are kds's own, because the KCL keeps their information elsewhere:
//! `kdsCheckpointTimestampMillis` (N) is the time of an `AT_TIMESTAMP` checkpoint (the KCL takes
//! it from its configuration), and `kdsCheckpointInAggregate` (BOOL) tells a checkpoint at user
//! record 0 of an aggregate from one at a plain record.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kds_client::{Client, DynamoDbClient};
use kds_proto::types::{SequenceNumber, ShardId};
use kds_table::TableDefinition;
use serde_json::{Map, Value, json};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, ErrorKind};
use crate::lease::{Lease, LeaseStore, StoreFuture, lost};

/// How long [`DynamoDbLeaseStore::open`] waits for a table it created to become active.
const ACTIVE_WITHIN: Duration = Duration::from_secs(120);

/// The DynamoDB error of a condition that did not hold.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// The DynamoDB error of a transaction that stored nothing: a condition that did not hold, or
/// a conflict with another transaction.
const CANCELLED: &str = "TransactionCanceledException";

/// The most pages of one listing. A page holds up to 1 MB, some thousands of leases: a lease
/// table of more pages is not one, or its store does not end its listing.
const MAX_SCAN_PAGES: usize = 1000;

/// The largest answer taken: DynamoDB's are at most about 1 MB (a Scan page; an item is at
/// most 400 KB).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The most writes in one DynamoDB transaction.
const MAX_TRANSACTION: usize = 100;

/// Leases in a DynamoDB table (pay per request), shared by every worker that names it.
///
/// [`update`](LeaseStore::update) writes its leases in one transaction, each conditional on its
/// counter: all or none (for more than 100 leases, all or none of each hundred, in order).
///
/// The table holds leases only: an item that is not one (no `leaseKey` shard id, no counter,
/// an attribute of the wrong type) fails every listing with a [`ErrorKind::Store`] error that
/// names it, rather than being passed over, since a lease read wrongly could be taken from a
/// worker that holds it. The KCL's items are leases: kds reads them, a checkpoint inside an
/// aggregate included; its `AT_TIMESTAMP` leases, which carry no time, are read from
/// `TRIM_HORIZON`.
#[derive(Clone, Debug)]
pub struct DynamoDbLeaseStore {
    client: DynamoDbClient,
    table: String,
    /// Shards whose KCL `AT_TIMESTAMP` lease has been reported as read from `TRIM_HORIZON`:
    /// each is reported once, not on every listing.
    reported: Arc<Mutex<HashSet<ShardId>>>,
}

impl DynamoDbLeaseStore {
    /// The lease table `table`, created when it does not exist (hash key `leaseKey`, billed per
    /// request), once it is active.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Usage`] for a name DynamoDB does not accept (3 to 255 letters, digits,
    /// `_`, `-` and `.`); [`ErrorKind::Store`] when DynamoDB fails, the table's key is not
    /// `leaseKey`, or the table is not active within two minutes.
    pub async fn open(client: DynamoDbClient, table: &str) -> Result<Self, Error> {
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "`{}` is not a DynamoDB table name (3 to 255 letters, digits, `_`, `-` and `.`)",
                    table.chars().take(300).collect::<String>()
                ),
            ));
        }
        let store = Self {
            client,
            table: table.to_owned(),
            reported: Arc::default(),
        };
        store.ensure_table().await?;
        Ok(store)
    }

    /// The lease table a Kinesis table declares (`scan.lease.table`, at
    /// `scan.lease.dynamodb.endpoint`), through `client`'s region, credentials and settings;
    /// `None` when it declares none.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`ErrorKind::Definition`] for an endpoint that is not a URL.
    pub async fn for_table(
        definition: &TableDefinition,
        client: &Client,
    ) -> Result<Option<Self>, Error> {
        let Some(lease_table) = &definition.options.source.lease_table else {
            return Ok(None);
        };
        let dynamodb = client
            .dynamodb(lease_table.endpoint.as_deref())
            .map_err(|e| {
                Error::new(ErrorKind::Definition, "`scan.lease.dynamodb.endpoint`").with_source(e)
            })?;
        Self::open(dynamodb, &lease_table.name).await.map(Some)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn ensure_table(&self) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + ACTIVE_WITHIN;
        let mut created = false;
        loop {
            let described = match self
                .call("DescribeTable", json!({ "TableName": self.table }))
                .await
            {
                Ok(described) => described,
                Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => {
                    if !created {
                        self.create_table().await?;
                        created = true;
                        continue;
                    }
                    // DescribeTable may not know a table just created (eventual consistency).
                    if tokio::time::Instant::now() >= deadline {
                        return Err(e.error);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => return Err(e.error),
            };
            let table = &described["Table"];
            let key = &table["KeySchema"];
            let hash_key = key.as_array().and_then(|keys| {
                keys.iter()
                    .find(|k| k["KeyType"] == "HASH")
                    .and_then(|k| k["AttributeName"].as_str())
            });
            if hash_key != Some("leaseKey") {
                return Err(Error::store(format!(
                    "DynamoDB table `{}` is keyed by {key}, not `leaseKey`: not a lease table",
                    self.table
                )));
            }
            match table["TableStatus"].as_str() {
                Some("ACTIVE") => return Ok(()),
                status if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::store(format!(
                        "DynamoDB table `{}` is not active within {ACTIVE_WITHIN:?} (status {})",
                        self.table,
                        status.unwrap_or("unknown")
                    )));
                }
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    async fn create_table(&self) -> Result<(), Error> {
        let request = json!({
            "TableName": self.table,
            "AttributeDefinitions": [{ "AttributeName": "leaseKey", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "leaseKey", "KeyType": "HASH" }],
            "BillingMode": "PAY_PER_REQUEST",
        });
        match self.call("CreateTable", request).await {
            Ok(_) => {
                tracing::info!(table = %self.table, "created the DynamoDB lease table");
                Ok(())
            }
            // Another worker created it first.
            Err(e) if e.code.as_deref() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(e.error),
        }
    }

    /// Calls `operation` with `request`; DynamoDB's error code comes apart for the callers
    /// that act on it.
    async fn call(&self, operation: &'static str, request: Value) -> Result<Value, CallError> {
        let body = Bytes::from(request.to_string());
        let response = self.client.call(operation, body).await.map_err(|e| {
            let code = e.service_code().map(str::to_owned);
            CallError {
                code,
                error: Error::store(format!(
                    "DynamoDB {operation} on table `{}` failed",
                    self.table
                ))
                .with_source(e),
            }
        })?;
        if response.len() > MAX_ANSWER {
            // Parsed, such a body could take some 16 times its size.
            return Err(CallError {
                code: None,
                error: Error::store(format!(
                    "DynamoDB's answer to {operation} on table `{}` is {} bytes, more than any \
                     answer of a lease table ({MAX_ANSWER})",
                    self.table,
                    response.len()
                )),
            });
        }
        serde_json::from_slice(&response).map_err(|e| CallError {
            code: None,
            error: Error::store(format!(
                "DynamoDB's answer to {operation} on table `{}` is not JSON",
                self.table
            ))
            .with_source(e),
        })
    }

    /// The lease of `shard` as stored now (for the message of a lost lease).
    async fn stored(&self, shard: &ShardId) -> Result<Option<Lease>, Error> {
        let response = self
            .call(
                "GetItem",
                json!({
                    "TableName": self.table,
                    "Key": { "leaseKey": { "S": shard.as_str() } },
                    "ConsistentRead": true,
                }),
            )
            .await
            .map_err(|e| e.error)?;
        match response.get("Item") {
            Some(item) => Ok(Some(self.read_lease(item)?)),
            None => Ok(None),
        }
    }

    async fn list_leases(&self) -> Result<Vec<Lease>, Error> {
        let mut leases = Vec::new();
        let mut start: Option<Value> = None;
        for page_number in 1..=MAX_SCAN_PAGES {
            let mut request = json!({ "TableName": self.table, "ConsistentRead": true });
            if let Some(key) = &start {
                request["ExclusiveStartKey"] = key.clone();
            }
            let page = self.call("Scan", request).await.map_err(|e| e.error)?;
            let items = page["Items"].as_array().ok_or_else(|| {
                Error::store(format!(
                    "DynamoDB's answer to Scan on table `{}` (page {page_number}) has no `Items`",
                    self.table
                ))
            })?;
            for item in items {
                leases.push(self.read_lease(item)?);
            }
            match page.get("LastEvaluatedKey") {
                Some(key) if !key.is_null() => {
                    if start.as_ref() == Some(key) {
                        return Err(Error::store(format!(
                            "DynamoDB's Scan on table `{}` answered page {page_number} with the \
                             key it was asked to start after",
                            self.table
                        )));
                    }
                    start = Some(key.clone());
                }
                _ => {
                    leases.sort_by(|a, b| a.shard_id.as_str().cmp(b.shard_id.as_str()));
                    return Ok(leases);
                }
            }
        }
        Err(Error::store(format!(
            "DynamoDB's Scan on table `{}` has more than {MAX_SCAN_PAGES} pages: not a lease table",
            self.table
        )))
    }

    async fn create_lease(&self, lease: Lease) -> Result<bool, Error> {
        let request = json!({
            "TableName": self.table,
            "Item": item_of_lease(&lease),
            "ConditionExpression": "attribute_not_exists(leaseKey)",
        });
        match self.call("PutItem", request).await {
            Ok(_) => Ok(true),
            Err(e) if e.code.as_deref() == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(e.error.for_shard(&lease.shard_id)),
        }
    }

    async fn update_leases(&self, leases: Vec<Lease>) -> Result<Vec<Lease>, Error> {
        if let Some(full) = leases.iter().find(|l| l.counter == u64::MAX) {
            return Err(
                Error::store("the lease counter is at its largest value").for_shard(&full.shard_id)
            );
        }
        let mut stored = Vec::with_capacity(leases.len());
        for chunk in leases.chunks(MAX_TRANSACTION) {
            let written: Vec<Lease> = chunk
                .iter()
                .map(|lease| {
                    let mut written = lease.clone();
                    written.counter += 1;
                    written
                })
                .collect();
            let puts: Vec<Value> = chunk
                .iter()
                .zip(&written)
                .map(|(read, written)| {
                    json!({
                        "TableName": self.table,
                        "Item": item_of_lease(written),
                        "ConditionExpression": "leaseCounter = :counter",
                        "ExpressionAttributeValues": {
                            ":counter": { "N": read.counter.to_string() }
                        },
                    })
                })
                .collect();
            let outcome = match <[Value; 1]>::try_from(puts) {
                // One lease: a conditional put (half the cost of a transaction).
                Ok([put]) => self.call("PutItem", put).await,
                Err(puts) => {
                    let items: Vec<Value> =
                        puts.into_iter().map(|put| json!({ "Put": put })).collect();
                    self.call("TransactWriteItems", json!({ "TransactItems": items }))
                        .await
                }
            };
            match outcome {
                Ok(_) => {}
                Err(e) if matches!(e.code.as_deref(), Some(CONDITION_FAILED | CANCELLED)) => {
                    self.check_written(chunk, &written, e.error).await?;
                }
                Err(e) => return Err(e.error.for_shard(&chunk[0].shard_id)),
            }
            stored.extend(written);
        }
        Ok(stored)
    }

    /// After a write of `leases` (as `written`) whose condition failed: `Ok` when the store
    /// holds exactly what was written (a retry of a write whose answer was lost met its own
    /// write); else [`ErrorKind::LeaseLost`] for the first lease whose stored counter is not
    /// the one it was read with; else `error` (a transaction cancelled for another reason, a
    /// conflict with another transaction, stored nothing).
    async fn check_written(
        &self,
        leases: &[Lease],
        written: &[Lease],
        error: Error,
    ) -> Result<(), Error> {
        let mut all_written = true;
        for (lease, written) in leases.iter().zip(written) {
            match self.stored(&lease.shard_id).await {
                Ok(stored) if stored.as_ref() == Some(written) => {}
                Ok(stored) if stored.as_ref().map(|l| l.counter) != Some(lease.counter) => {
                    return Err(lost(&lease.shard_id, lease.counter, stored.as_ref()));
                }
                Ok(_) => all_written = false,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::LeaseLost,
                        format!(
                            "the lease was written with counter {}, and the store's counter is \
                             another",
                            lease.counter
                        ),
                    )
                    .for_shard(&lease.shard_id)
                    .with_source(e));
                }
            }
        }
        if all_written { Ok(()) } else { Err(error) }
    }

    async fn delete_lease(&self, shard: &ShardId, counter: u64) -> Result<(), Error> {
        let request = json!({
            "TableName": self.table,
            "Key": { "leaseKey": { "S": shard.as_str() } },
            "ConditionExpression": "leaseCounter = :counter",
            "ExpressionAttributeValues": { ":counter": { "N": counter.to_string() } },
        });
        match self.call("DeleteItem", request).await {
            Ok(_) => Ok(()),
            Err(e) if e.code.as_deref() == Some(CONDITION_FAILED) => {
                let stored = self.stored(shard).await?;
                Err(lost(shard, counter, stored.as_ref()))
            }
            Err(e) => Err(e.error.for_shard(shard)),
        }
    }
}

/// A failed call, with DynamoDB's error code when it answered with one.
struct CallError {
    code: Option<String>,
    error: Error,
}

impl LeaseStore for DynamoDbLeaseStore {
    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(self.list_leases())
    }

    fn create(&self, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(self.create_lease(lease))
    }

    fn update(&self, leases: Vec<Lease>) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(self.update_leases(leases))
    }

    fn delete(&self, shard: &ShardId, counter: u64) -> StoreFuture<'_, ()> {
        let shard = shard.clone();
        Box::pin(async move { self.delete_lease(&shard, counter).await })
    }
}

/// The DynamoDB item of `lease`.
fn item_of_lease(lease: &Lease) -> Value {
    let mut item = Map::new();
    let mut put = |name: &str, value: Value| {
        item.insert(name.to_owned(), value);
    };
    put("leaseKey", json!({ "S": lease.shard_id.as_str() }));
    if let Some(owner) = &lease.owner {
        put("leaseOwner", json!({ "S": owner }));
    }
    put("leaseCounter", json!({ "N": lease.counter.to_string() }));
    let (checkpoint, sub) = match &lease.checkpoint {
        Checkpoint::TrimHorizon => ("TRIM_HORIZON".to_owned(), 0),
        Checkpoint::AtTimestamp { millis } => {
            put(
                "kdsCheckpointTimestampMillis",
                json!({ "N": millis.to_string() }),
            );
            ("AT_TIMESTAMP".to_owned(), 0)
        }
        Checkpoint::Record {
            sequence_number,
            sub_sequence_number,
        } => {
            put(
                "kdsCheckpointInAggregate",
                json!({ "BOOL": sub_sequence_number.is_some() }),
            );
            (
                sequence_number.as_str().to_owned(),
                sub_sequence_number.unwrap_or(0),
            )
        }
        Checkpoint::ShardEnd => ("SHARD_END".to_owned(), 0),
    };
    put("checkpoint", json!({ "S": checkpoint }));
    put(
        "checkpointSubSequenceNumber",
        json!({ "N": sub.to_string() }),
    );
    if !lease.parents.is_empty() {
        let parents: Vec<&str> = lease.parents.iter().map(ShardId::as_str).collect();
        put("parentShardId", json!({ "SS": parents }));
    }
    if let Some((start, end)) = &lease.hash_range {
        put("startingHashKey", json!({ "S": start }));
        put("endingHashKey", json!({ "S": end }));
    }
    Value::Object(item)
}

/// At most the first 200 characters of `text`, for messages that quote the store.
fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(200) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

impl DynamoDbLeaseStore {
    /// The lease of a DynamoDB item; a KCL lease at `AT_TIMESTAMP` without a time is reported
    /// the first time this store reads it.
    fn read_lease(&self, item: &Value) -> Result<Lease, Error> {
        let lease = lease_of_item(item)?;
        if item["checkpoint"]["S"] == "AT_TIMESTAMP"
            && lease.checkpoint == Checkpoint::TrimHorizon
            && self
                .reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(lease.shard_id.clone())
        {
            tracing::warn!(
                shard = %lease.shard_id,
                "a lease at AT_TIMESTAMP without a time (written by the KCL) is read from \
                 TRIM_HORIZON"
            );
        }
        Ok(lease)
    }
}

/// The lease of a DynamoDB item.
fn lease_of_item(item: &Value) -> Result<Lease, Error> {
    let key = item["leaseKey"]["S"].as_str().unwrap_or("");
    let bad = |what: String| Error::store(format!("the lease item `{}` {what}", clip(key)));
    let shard_id =
        ShardId::new(key).map_err(|e| bad(format!("has no shard id as `leaseKey`: {e}")))?;
    // An attribute of type `kind`: `None` when absent or NULL, an error when of another type.
    let attribute = |name: &str, kind: &str| -> Result<Option<&Value>, Error> {
        match item.get(name) {
            None => Ok(None),
            Some(value) if value["NULL"] == true => Ok(None),
            Some(value) => value.get(kind).map(Some).ok_or_else(|| {
                bad(format!(
                    "has `{name}` {}, not of DynamoDB type {kind}",
                    clip(&value.to_string())
                ))
            }),
        }
    };
    let text = |name: &str| -> Result<Option<&str>, Error> {
        attribute(name, "S")?
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| bad(format!("has `{name}` that is not a string")))
            })
            .transpose()
    };
    let number = |name: &str| -> Result<Option<u64>, Error> {
        attribute(name, "N")?
            .map(|value| {
                value.as_str().and_then(|n| n.parse().ok()).ok_or_else(|| {
                    bad(format!(
                        "has `{name}` {}, not a whole number",
                        clip(&value.to_string())
                    ))
                })
            })
            .transpose()
    };
    let counter = number("leaseCounter")?.ok_or_else(|| bad("has no `leaseCounter`".into()))?;
    let sub = number("checkpointSubSequenceNumber")?.unwrap_or(0);
    // Without our attribute (the KCL's items), a checkpoint may be user record 0 of an
    // aggregate, and is read as one: the rest of the aggregate follows it, and a plain record
    // there is read again and dropped as delivered.
    let in_aggregate = match attribute("kdsCheckpointInAggregate", "BOOL")? {
        None => true,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| bad("has `kdsCheckpointInAggregate` that is not a boolean".into()))?,
    };
    let checkpoint = match text("checkpoint")? {
        Some("TRIM_HORIZON") => Checkpoint::TrimHorizon,
        // The KCL's lease of a shard not read yet, to start at the newest record: pinned to
        // now, as a LATEST start is.
        Some("LATEST") => Checkpoint::AtTimestamp {
            millis: crate::source::now_millis(),
        },
        Some("SHARD_END") => Checkpoint::ShardEnd,
        Some("AT_TIMESTAMP") => match number("kdsCheckpointTimestampMillis")? {
            Some(millis) => Checkpoint::AtTimestamp {
                millis: i64::try_from(millis).map_err(|_| {
                    bad(format!(
                        "has `kdsCheckpointTimestampMillis` {millis}, past any time"
                    ))
                })?,
            },
            // The KCL's lease of a shard not read yet, to start at a time of the KCL's
            // configuration, which the item does not hold: from the oldest record, so that
            // nothing is missed. (The store reports it, once.)
            None => Checkpoint::TrimHorizon,
        },
        Some(sequence) => Checkpoint::Record {
            sequence_number: SequenceNumber::new(sequence)
                .map_err(|e| bad(format!("has checkpoint `{}`: {e}", clip(sequence))))?,
            sub_sequence_number: (in_aggregate || sub > 0).then_some(sub),
        },
        None => return Err(bad("has no `checkpoint`".into())),
    };
    let parents = match item.get("parentShardId") {
        None => Vec::new(),
        Some(value) => value["SS"]
            .as_array()
            .ok_or_else(|| {
                bad(format!(
                    "has `parentShardId` {}, not a string set",
                    clip(&value.to_string())
                ))
            })?
            .iter()
            .map(|p| {
                p.as_str()
                    .and_then(|p| ShardId::new(p).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "has a parent {} that is not a shard id",
                            clip(&p.to_string())
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let hash_range = match (text("startingHashKey")?, text("endingHashKey")?) {
        (Some(start), Some(end)) => Some((start.to_owned(), end.to_owned())),
        _ => None,
    };
    let mut lease = Lease::new(shard_id, checkpoint, parents);
    lease.owner = text("leaseOwner")?.map(str::to_owned);
    lease.counter = counter;
    lease.hash_range = hash_range;
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}")).unwrap()
    }

    #[test]
    fn items_keep_every_part_of_a_lease() {
        let sequence =
            SequenceNumber::new("49590338271490256608559692538361571095921575989136588898")
                .unwrap();
        for checkpoint in [
            Checkpoint::TrimHorizon,
            Checkpoint::AtTimestamp {
                millis: 1_700_000_000_123,
            },
            Checkpoint::Record {
                sequence_number: sequence.clone(),
                sub_sequence_number: None,
            },
            Checkpoint::Record {
                sequence_number: sequence.clone(),
                sub_sequence_number: Some(0),
            },
            Checkpoint::Record {
                sequence_number: sequence.clone(),
                sub_sequence_number: Some(7),
            },
            Checkpoint::ShardEnd,
        ] {
            let mut lease =
                Lease::new(id(3), checkpoint, vec![id(1), id(2)]).with_hash_range(0, u128::MAX);
            lease.owner = Some("worker-a".into());
            lease.counter = 41;
            let item = item_of_lease(&lease);
            assert_eq!(lease_of_item(&item).unwrap(), lease, "{item}");
        }
        let bare = Lease::new(id(0), Checkpoint::TrimHorizon, Vec::new());
        let item = item_of_lease(&bare);
        assert!(item.get("parentShardId").is_none(), "no empty string sets");
        assert!(item.get("leaseOwner").is_none());
        assert_eq!(lease_of_item(&item).unwrap(), bare);
    }

    #[test]
    fn items_read_as_the_kcl_writes_them() {
        // A KCL lease: no kds attributes, a sub-sequence number > 0 inside an aggregate.
        let item = json!({
            "leaseKey": { "S": "shardId-000000000004" },
            "leaseOwner": { "S": "kcl-worker" },
            "leaseCounter": { "N": "12" },
            "ownerSwitchesSinceCheckpoint": { "N": "0" },
            "checkpoint": { "S": "4959" },
            "checkpointSubSequenceNumber": { "N": "3" },
            "parentShardId": { "SS": ["shardId-000000000001"] },
        });
        let lease = lease_of_item(&item).unwrap();
        let mut latest = item.clone();
        latest["checkpoint"] = json!({ "S": "LATEST" });
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        match lease_of_item(&latest).unwrap().checkpoint {
            Checkpoint::AtTimestamp { millis } => assert!(millis >= before, "{millis}"),
            other => panic!("LATEST read as {other:?}"),
        }
        assert_eq!(lease.counter, 12);
        assert_eq!(lease.owner.as_deref(), Some("kcl-worker"));
        assert_eq!(lease.parents, [id(1)]);
        assert_eq!(
            lease.checkpoint,
            Checkpoint::Record {
                sequence_number: SequenceNumber::new("4959").unwrap(),
                sub_sequence_number: Some(3),
            }
        );
    }

    #[test]
    fn bad_items_are_named() {
        for (item, expected) in [
            (json!({ "leaseKey": { "S": "x/y" } }), "has no shard id"),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "checkpoint": { "S": "TRIM_HORIZON" } }),
                "has no `leaseCounter`",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "-4" },
                        "checkpoint": { "S": "TRIM_HORIZON" } }),
                "`leaseCounter`",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" },
                        "checkpoint": { "S": "12abc" } }),
                "has checkpoint `12abc`",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" },
                        "checkpoint": { "S": "TRIM_HORIZON" }, "leaseOwner": { "N": "5" } }),
                "has `leaseOwner` {\"N\":\"5\"}, not of DynamoDB type S",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" },
                        "checkpoint": { "S": "4959" },
                        "kdsCheckpointInAggregate": { "S": "yes" } }),
                "`kdsCheckpointInAggregate`",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" },
                        "checkpoint": { "S": "TRIM_HORIZON" },
                        "parentShardId": { "SS": "x".repeat(100_000) } }),
                "has `parentShardId`",
            ),
            (
                json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" } }),
                "has no `checkpoint`",
            ),
        ] {
            let error = lease_of_item(&item).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store);
            assert!(error.to_string().contains(expected), "{error}");
            // Values from the store are quoted in part.
            assert!(error.to_string().len() < 1000, "{error}");
        }
        // An owner that is NULL is no owner.
        let item = json!({ "leaseKey": { "S": "shardId-1" }, "leaseCounter": { "N": "4" },
                           "checkpoint": { "S": "TRIM_HORIZON" },
                           "leaseOwner": { "NULL": true } });
        assert_eq!(lease_of_item(&item).unwrap().owner, None);
    }

    /// Found in review: a KCL checkpoint at sub-sequence number 0 may be user record 0 of an
    /// aggregate, but was read as a plain record, so the rest of the aggregate was skipped.
    /// And the KCL's AT_TIMESTAMP leases, which carry no time, failed every listing.
    #[test]
    fn kcl_checkpoints_lose_no_user_record() {
        let item = json!({
            "leaseKey": { "S": "shardId-000000000004" },
            "leaseCounter": { "N": "12" },
            "checkpoint": { "S": "4959" },
            "checkpointSubSequenceNumber": { "N": "0" },
        });
        assert_eq!(
            lease_of_item(&item).unwrap().checkpoint,
            Checkpoint::Record {
                sequence_number: SequenceNumber::new("4959").unwrap(),
                sub_sequence_number: Some(0),
            }
        );
        let mut at_timestamp = item.clone();
        at_timestamp["checkpoint"] = json!({ "S": "AT_TIMESTAMP" });
        assert_eq!(
            lease_of_item(&at_timestamp).unwrap().checkpoint,
            Checkpoint::TrimHorizon
        );
    }

    /// Found in review: a store whose Scan always had a next page kept the listing going
    /// for ever, and an answer without `Items` read as a table without leases.
    #[tokio::test]
    async fn listings_that_do_not_end_or_hold_no_items_are_errors() {
        use kds_test_support::proxy::{Fault, Proxy};
        let proxy = Proxy::start().await;
        let store = store_behind(&proxy);
        let page = |key: usize| {
            Fault::Reply(format!(
                r#"{{"Items":[],"LastEvaluatedKey":{{"leaseKey":{{"S":"shardId-{key}"}}}}}}"#
            ))
        };
        // The same key again.
        proxy.script_for("DynamoDB_20120810.Scan", [page(1), page(1)]);
        let error = store.list().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(error.to_string().contains("page 2"), "{error}");
        // Always a new key.
        proxy.script_for("DynamoDB_20120810.Scan", (0..=MAX_SCAN_PAGES).map(page));
        let error = store.list().await.unwrap_err();
        assert!(
            error.to_string().contains("more than 1000 pages"),
            "{error}"
        );
        // No items.
        proxy.script_for("DynamoDB_20120810.Scan", [Fault::Reply("{}".into())]);
        let error = store.list().await.unwrap_err();
        assert!(error.to_string().contains("has no `Items`"), "{error}");
        // An answer larger than DynamoDB gives, of values that take 16 times their size.
        let huge = format!("[{}0]", "0,".repeat(3 * 1024 * 1024));
        proxy.script_for("DynamoDB_20120810.Scan", [Fault::Reply(huge)]);
        let error = store.list().await.unwrap_err();
        assert!(
            error.to_string().contains("more than any answer"),
            "{error}"
        );
        assert_eq!(proxy.unused_faults(), 0);
    }

    /// Counts the warnings of this crate.
    struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let metadata = event.metadata();
            if *metadata.level() == tracing::Level::WARN
                && metadata.target().starts_with("kds_stream")
            {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// Found in review: the warning for a KCL lease at AT_TIMESTAMP without a time was logged
    /// on every listing (three times a lease duration), not once.
    #[tokio::test]
    async fn a_kcl_lease_without_a_time_is_reported_once() {
        use kds_test_support::proxy::{Fault, Proxy};
        let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _guard = tracing::subscriber::set_default(Warnings(Arc::clone(&warnings)));
        let proxy = Proxy::start().await;
        let store = store_behind(&proxy);
        let page = Fault::Reply(
            json!({ "Items": [{
                "leaseKey": { "S": "shardId-000000000004" },
                "leaseCounter": { "N": "12" },
                "checkpoint": { "S": "AT_TIMESTAMP" },
            }] })
            .to_string(),
        );
        proxy.script_for("DynamoDB_20120810.Scan", [page.clone(), page.clone(), page]);
        for _ in 0..3 {
            let leases = store.list().await.unwrap();
            assert_eq!(leases[0].checkpoint, Checkpoint::TrimHorizon);
        }
        assert_eq!(warnings.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(proxy.unused_faults(), 0);
    }

    /// A store of table `kds-leases` whose requests go to `proxy`, which answers them.
    fn store_behind(proxy: &kds_test_support::proxy::Proxy) -> DynamoDbLeaseStore {
        DynamoDbLeaseStore {
            client: kds_test_support::client(&proxy.url)
                .dynamodb(Some(&proxy.url))
                .unwrap(),
            table: "kds-leases".to_owned(),
            reported: Arc::default(),
        }
    }

    async fn store_at(url: &str, table: &str) -> DynamoDbLeaseStore {
        let dynamodb = kds_test_support::client(url).dynamodb(Some(url)).unwrap();
        DynamoDbLeaseStore::open(dynamodb, table).await.unwrap()
    }

    #[tokio::test]
    async fn the_dynamodb_store_compares_and_sets() {
        let dynamo = kds_test_support::Dynoxide::start().await;
        let store = store_at(&dynamo.url, "kds-leases").await;
        crate::lease::tests::check_compare_and_set(&store).await;
        // Opening the existing table finds the same leases.
        let again = store_at(&dynamo.url, "kds-leases").await;
        assert_eq!(again.list().await.unwrap(), store.list().await.unwrap());
        // The items carry the KCL's attribute names.
        let raw = store
            .call("Scan", json!({ "TableName": "kds-leases" }))
            .await
            .map_err(|e| e.error)
            .unwrap();
        let item = &raw["Items"][0];
        for name in ["leaseKey", "leaseOwner", "leaseCounter", "checkpoint"] {
            assert!(item.get(name).is_some(), "{name} in {item}");
        }
        assert_eq!(item["leaseKey"]["S"], "shardId-000000000000");
        assert_eq!(item["leaseOwner"]["S"], "a");
        assert_eq!(item["leaseCounter"]["N"], "1");
        // More leases than one transaction holds.
        let many: Vec<Lease> = (10..160)
            .map(|n| Lease::new(id(n), Checkpoint::TrimHorizon, Vec::new()))
            .collect();
        for lease in &many {
            assert!(store.create(lease.clone()).await.unwrap());
        }
        let stored = store.update(many).await.unwrap();
        assert_eq!(stored.len(), 150);
        let listed = store.list().await.unwrap();
        assert_eq!(listed.len(), 151);
        assert!(listed[1..].iter().all(|l| l.counter == 1), "{listed:?}");
    }

    #[tokio::test]
    async fn a_write_retried_after_its_answer_was_lost_meets_itself() {
        let dynamo = kds_test_support::Dynoxide::start().await;
        let store = store_at(&dynamo.url, "retries").await;
        let mut lease = Lease::new(id(0), Checkpoint::TrimHorizon, Vec::new());
        assert!(store.create(lease.clone()).await.unwrap());
        lease.owner = Some("a".into());
        let other = Lease::new(id(1), Checkpoint::TrimHorizon, Vec::new());
        assert!(store.create(other.clone()).await.unwrap());
        // The same writes again, as a retry would send them: their condition fails on their
        // own counter, and the store holds exactly what they wrote.
        for batch in [vec![lease.clone()], vec![lease.clone(), other.clone()]] {
            let first = store.update(batch.clone()).await.unwrap();
            let again = store.update(batch).await.unwrap();
            assert_eq!(first, again);
            // Forget the writes for the next batch.
            for stored in first {
                store
                    .delete(&stored.shard_id, stored.counter)
                    .await
                    .unwrap();
                let mut fresh = stored.clone();
                fresh.counter = 0;
                fresh.owner = None;
                assert!(store.create(fresh).await.unwrap());
            }
        }
        // Another writer's content under the same counter is still a lost lease.
        let mut b = lease.clone();
        b.owner = Some("b".into());
        store.update(vec![lease]).await.unwrap();
        let error = store.update(vec![b]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::LeaseLost);
    }

    #[tokio::test]
    async fn one_of_many_racing_writers_wins() {
        let dynamo = kds_test_support::Dynoxide::start().await;
        let store = Arc::new(store_at(&dynamo.url, "race").await);
        let lease = Lease::new(id(0), Checkpoint::TrimHorizon, Vec::new());
        assert!(store.create(lease.clone()).await.unwrap());
        let writers: Vec<_> = (0..8)
            .map(|n| {
                let store = Arc::clone(&store);
                let mut lease = lease.clone();
                lease.owner = Some(format!("worker-{n}"));
                tokio::spawn(async move { store.update(vec![lease]).await })
            })
            .collect();
        let mut won = Vec::new();
        for writer in writers {
            match writer.await.unwrap() {
                Ok(stored) => won.push(stored[0].owner.clone().unwrap()),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::LeaseLost, "{e}");
                    assert!(e.to_string().contains("counter 1 (owner worker-"), "{e}");
                }
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        let stored = store.list().await.unwrap();
        assert_eq!(stored[0].counter, 1);
        assert_eq!(stored[0].owner.as_ref(), Some(&won[0]));
    }

    #[tokio::test]
    async fn tables_that_are_not_lease_tables_are_refused() {
        let dynamo = kds_test_support::Dynoxide::start().await;
        let store = store_at(&dynamo.url, "leases").await;
        store
            .call(
                "CreateTable",
                json!({
                    "TableName": "orders",
                    "AttributeDefinitions": [{ "AttributeName": "id", "AttributeType": "S" }],
                    "KeySchema": [{ "AttributeName": "id", "KeyType": "HASH" }],
                    "BillingMode": "PAY_PER_REQUEST",
                }),
            )
            .await
            .map_err(|e| e.error)
            .unwrap();
        let dynamodb = kds_test_support::client(&dynamo.url)
            .dynamodb(Some(&dynamo.url))
            .unwrap();
        let error = DynamoDbLeaseStore::open(dynamodb.clone(), "orders")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(error.to_string().contains("not a lease table"), "{error}");
        let error = DynamoDbLeaseStore::open(dynamodb, "a/b").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage);
        // An item another program wrote that is not a lease is named when listing.
        store
            .call(
                "PutItem",
                json!({ "TableName": "leases", "Item": { "leaseKey": { "S": "shardId-9" } } }),
            )
            .await
            .map_err(|e| e.error)
            .unwrap();
        let error = store.list().await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`shardId-9` has no `leaseCounter`"),
            "{error}"
        );
    }
}
