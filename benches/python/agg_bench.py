"""The kds-agg benchmark workload run through PyPI aws-kinesis-agg, for BENCHMARKS.md.

100 000 user records of 100 bytes over 1000 partition keys, aggregated with max_size=51200,
then deaggregated from raw bytes (data_format='Boto3'). Prints records/s, best of 3.

    python3 -m venv /tmp/aggvenv && /tmp/aggvenv/bin/pip install aws-kinesis-agg==1.2.3 six
    /tmp/aggvenv/bin/python benches/python/agg_bench.py
"""

import random
import time

import aws_kinesis_agg.aggregator as aggregator  # must come first: it patches sys.path
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

N = 100_000
rng = random.Random(7)
records = [(f"partition-{i % 1000}", bytes(rng.getrandbits(8) for _ in range(100))) for i in range(N)]


def aggregate():
    agg = aggregator.RecordAggregator(max_size=51200)
    out = []
    for pk, data in records:
        ready = agg.add_user_record(pk, data)
        if ready is not None:
            out.append(ready.get_contents())
    last = agg.clear_and_get()
    if last is not None:
        out.append(last.get_contents())
    return out


def best(fn):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


agg_time, aggregates = best(aggregate)
boto = [
    {"Data": data, "PartitionKey": pk, "SequenceNumber": str(i), "ApproximateArrivalTimestamp": 0}
    for i, (pk, _ehk, data) in enumerate(aggregates)
]


def deaggregate():
    return sum(1 for _ in iter_deaggregate_records(boto, data_format="Boto3"))


deagg_time, count = best(deaggregate)
assert count == N, count
total = sum(len(a[2]) for a in aggregates)
print(f"aws-kinesis-agg {len(aggregates)} aggregates, {total} bytes")
print(f"aggregate:   {N / agg_time:,.0f} records/s")
print(f"deaggregate: {N / deagg_time:,.0f} records/s ({total / deagg_time / 1e6:.1f} MB/s)")
