//! Event-time watermarks from the table's `WATERMARK FOR column AS expression`: per shard, the
//! largest event time seen less the declared delay; a shard silent for
//! `scan.shard.idle.interval` stops holding the others back; the source's watermark is the
//! smallest over the shards that count, and never goes back (Flink's `emitWatermark` rules for
//! its legacy source, which its SQL connector never applied).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use kds_proto::types::ShardId;

use crate::error::{Error, ErrorKind};

/// A parsed `WATERMARK FOR column AS expression`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatermarkSpec {
    /// The event-time column.
    pub column: String,
    /// How far behind the largest event time the watermark stays, in milliseconds.
    pub delay_millis: i64,
}

/// Takes a word (an identifier, possibly in backquotes) off the front of `text`.
fn word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if let Some(rest) = text.strip_prefix('`') {
        let end = rest.find('`')?;
        return Some((&rest[..end], &rest[end + 1..]));
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| (&text[..end], &text[end..]))
}

impl WatermarkSpec {
    /// Reads the expression of `WATERMARK FOR column AS expression`: `column`, or
    /// `column - INTERVAL 'n' unit` with unit `MILLISECOND`, `SECOND`, `MINUTE`, `HOUR` or `DAY`
    /// (an optional precision after the unit, `SECOND(3)`, is accepted).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Definition`] naming the expression and the forms this runtime evaluates.
    pub fn parse(column: &str, expression: &str) -> Result<Self, Error> {
        let unsupported = || {
            Error::new(
                ErrorKind::Definition,
                format!(
                    "WATERMARK FOR `{column}` AS {expression}: the source evaluates `{column}` and \
                     `{column} - INTERVAL 'n' SECOND` (or MILLISECOND, MINUTE, HOUR, DAY); other \
                     expressions need kds-sql"
                ),
            )
        };
        let (name, rest) = word(expression).ok_or_else(unsupported)?;
        if name != column {
            return Err(unsupported());
        }
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(Self {
                column: column.to_owned(),
                delay_millis: 0,
            });
        }
        let rest = rest.strip_prefix('-').ok_or_else(unsupported)?;
        let (keyword, rest) = word(rest).ok_or_else(unsupported)?;
        if !keyword.eq_ignore_ascii_case("INTERVAL") {
            return Err(unsupported());
        }
        let rest = rest
            .trim_start()
            .strip_prefix('\'')
            .ok_or_else(unsupported)?;
        let end = rest.find('\'').ok_or_else(unsupported)?;
        let amount = rest[..end].trim();
        let (unit, rest) = word(&rest[end + 1..]).ok_or_else(unsupported)?;
        let rest = rest.trim();
        let precision_ok = rest.is_empty()
            || rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .is_some_and(|p| p.trim().parse::<u8>().is_ok());
        if !precision_ok {
            return Err(unsupported());
        }
        let millis_per = match unit.to_ascii_uppercase().as_str() {
            "MILLISECOND" => 1.0,
            "SECOND" => 1_000.0,
            "MINUTE" => 60_000.0,
            "HOUR" => 3_600_000.0,
            "DAY" => 86_400_000.0,
            _ => return Err(unsupported()),
        };
        let amount: f64 = amount.parse().map_err(|_| unsupported())?;
        let delay = (amount * millis_per).round();
        if !(0.0..=9.0e15).contains(&delay) {
            return Err(unsupported());
        }
        Ok(Self {
            column: column.to_owned(),
            delay_millis: delay as i64,
        })
    }

    /// The earliest and latest event times in `batch`, whose column `index` is the event-time
    /// column, in epoch milliseconds; `None` when no row has one.
    pub(crate) fn event_time_range(
        &self,
        batch: &RecordBatch,
        index: usize,
    ) -> Result<Option<(i64, i64)>, Error> {
        let column = batch.column(index);
        let range = |values: &mut dyn Iterator<Item = Option<i64>>| {
            values.flatten().fold(None, |range, v| match range {
                None => Some((v, v)),
                Some((low, high)) => Some((v.min(low), v.max(high))),
            })
        };
        Ok(match column.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => range(
                &mut column
                    .as_primitive::<TimestampSecondType>()
                    .iter()
                    .map(|v| v.map(|s| s.saturating_mul(1000))),
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                range(&mut column.as_primitive::<TimestampMillisecondType>().iter())
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => range(
                &mut column
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .map(|v| v.map(|us| us.div_euclid(1000))),
            ),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => range(
                &mut column
                    .as_primitive::<TimestampNanosecondType>()
                    .iter()
                    .map(|v| v.map(|ns| ns.div_euclid(1_000_000))),
            ),
            other => {
                return Err(Error::new(
                    ErrorKind::Definition,
                    format!(
                        "watermark column `{}` has type {other}, not a timestamp",
                        self.column
                    ),
                ));
            }
        })
    }

    /// The index of the event-time column in `schema`.
    pub(crate) fn index_in(&self, schema: &Schema) -> Result<usize, Error> {
        schema.index_of(&self.column).map_err(|_| {
            Error::new(
                ErrorKind::Definition,
                format!(
                    "watermark column `{}` is not a column the source decodes",
                    self.column
                ),
            )
        })
    }
}

/// One shard's event time.
#[derive(Clone, Copy, Debug)]
struct ShardMark {
    /// The largest event time seen, in epoch milliseconds.
    max_event: i64,
    /// When the shard last delivered rows.
    active_at: Instant,
}

/// The watermark of a source over its shards.
#[derive(Clone, Debug)]
pub(crate) struct Watermarks {
    delay_millis: i64,
    idle_after: Option<Duration>,
    shards: HashMap<ShardId, ShardMark>,
    emitted: Option<i64>,
}

impl Watermarks {
    pub(crate) fn new(delay_millis: i64, idle_after: Option<Duration>) -> Self {
        Self {
            delay_millis,
            idle_after,
            shards: HashMap::new(),
            emitted: None,
        }
    }

    /// Rows of `shard` with event times up to `max_event` arrived at `now`.
    pub(crate) fn observe(&mut self, shard: &ShardId, max_event: Option<i64>, now: Instant) {
        let Some(max_event) = max_event else {
            return;
        };
        let mark = self.shards.entry(shard.clone()).or_insert(ShardMark {
            max_event,
            active_at: now,
        });
        mark.max_event = mark.max_event.max(max_event);
        mark.active_at = now;
    }

    /// `shard` has ended: it holds nothing back any more.
    pub(crate) fn ended(&mut self, shard: &ShardId) {
        self.shards.remove(shard);
    }

    /// Whether a shard counts at `now` (delivered within the idle interval).
    pub(crate) fn any_active(&self, now: Instant) -> bool {
        self.shards.values().any(|m| {
            self.idle_after
                .is_none_or(|idle| now.saturating_duration_since(m.active_at) < idle)
        })
    }

    /// The watermark at `now`: the smallest per-shard watermark over shards that delivered
    /// within the idle interval (all shards when there is none), never below one given before;
    /// `None` before any shard counts.
    pub(crate) fn current(&mut self, now: Instant) -> Option<i64> {
        let candidate = self
            .shards
            .values()
            .filter(|m| {
                self.idle_after
                    .is_none_or(|idle| now.saturating_duration_since(m.active_at) < idle)
            })
            .map(|m| m.max_event.saturating_sub(self.delay_millis))
            .min();
        if let Some(candidate) = candidate {
            self.emitted = Some(self.emitted.map_or(candidate, |e| e.max(candidate)));
        }
        self.emitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_expressions() {
        let parse = |e: &str| WatermarkSpec::parse("ts", e).map(|s| s.delay_millis);
        assert_eq!(parse("ts").unwrap(), 0);
        assert_eq!(parse("`ts`").unwrap(), 0);
        assert_eq!(parse("ts - INTERVAL '5' SECOND").unwrap(), 5_000);
        assert_eq!(parse("`ts` - interval '0.001' second").unwrap(), 1);
        assert_eq!(parse("ts - INTERVAL '2' MINUTE").unwrap(), 120_000);
        assert_eq!(parse("ts - INTERVAL '1' HOUR").unwrap(), 3_600_000);
        assert_eq!(parse("ts - INTERVAL '1' DAY").unwrap(), 86_400_000);
        assert_eq!(parse("ts - INTERVAL '250' MILLISECOND").unwrap(), 250);
        assert_eq!(parse("ts - INTERVAL '5' SECOND(3)").unwrap(), 5_000);
        for bad in [
            "other",
            "ts + INTERVAL '5' SECOND",
            "ts - INTERVAL '5' FORTNIGHT",
            "ts - INTERVAL 'five' SECOND",
            "ts - INTERVAL '-5' SECOND",
            "CURRENT_WATERMARK(ts)",
            "ts - INTERVAL '5' SECOND garbage",
        ] {
            let error = WatermarkSpec::parse("ts", bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Definition, "{bad}");
            assert!(error.to_string().contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn the_slowest_active_shard_holds_the_watermark_which_never_goes_back() {
        let (a, b) = (
            ShardId::new("shardId-000000000000").unwrap(),
            ShardId::new("shardId-000000000001").unwrap(),
        );
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut marks = Watermarks::new(1_000, Some(Duration::from_secs(5)));
        assert_eq!(marks.current(at(0)), None, "nothing seen");
        marks.observe(&a, Some(10_000), at(0));
        marks.observe(&b, Some(4_000), at(0));
        assert_eq!(marks.current(at(1)), Some(3_000));
        marks.observe(&b, Some(12_000), at(2));
        assert_eq!(marks.current(at(2)), Some(9_000));
        // b's late, smaller event time does not lower its mark.
        marks.observe(&b, Some(1_000), at(3));
        assert_eq!(marks.current(at(3)), Some(9_000));
        // a falls silent for the idle interval: only b counts.
        marks.observe(&b, Some(20_000), at(6_000));
        assert_eq!(marks.current(at(6_000)), Some(19_000));
        // Every shard idle: the watermark stays where it was.
        assert_eq!(marks.current(at(60_000)), Some(19_000));
        // a comes back behind: the watermark does not go back.
        marks.observe(&a, Some(15_000), at(61_000));
        assert_eq!(marks.current(at(61_000)), Some(19_000));
        marks.ended(&a);
        marks.ended(&b);
        assert_eq!(marks.current(at(62_000)), Some(19_000));
    }
}
