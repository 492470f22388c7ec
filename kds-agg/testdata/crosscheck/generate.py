#!/usr/bin/env python3
"""Generate "ours decode theirs" vectors with the PyPI package aws-kinesis-agg.

Writes <case>.bin (the exact aggregated Kinesis record data produced by the
library) and <case>.json (producer, aggregate-level partition / explicit hash
key, and the user records that were handed to the aggregator) into python/
next to this script. Deterministic: no randomness, re-running reproduces the
same bytes. Any existing python/*.bin / python/*.json files are replaced.

How to run (outside the repo, once):
    python3 -m venv /tmp/aggvenv
    /tmp/aggvenv/bin/pip install aws-kinesis-agg==1.2.3 six
then:
    /tmp/aggvenv/bin/python kds-agg/testdata/crosscheck/generate.py

The inputs of every case are identical to those in generate.js (keep the two
in sync).
"""
import glob
import json
import os
import sys

try:
    # aggregator must be imported first: it patches sys.path so that the
    # generated messages_pb2 can find config_pb2.
    import aws_kinesis_agg.aggregator as agg
    import aws_kinesis_agg.deaggregator  # noqa: F401  (import order check only)
    from importlib.metadata import version as _pkg_version
except ImportError as e:  # pragma: no cover
    sys.exit("generate.py: cannot import aws_kinesis_agg (%s); install it with "
             "'pip install aws-kinesis-agg==1.2.3 six' into the interpreter you run "
             "this with" % e)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "python")
PRODUCER = "aws-kinesis-agg (PyPI) %s" % _pkg_version("aws-kinesis-agg")
MAX_SIZE = 1024 * 1024  # the library's maximum (and default)

U128_MAX = "340282366920938463463374607431768211455"
U127 = "170141183460469231731687303715884105728"  # 2**127


def pattern(n, seed):
    """Deterministic binary bytes, covering 0x00..0xff."""
    return bytes(((seed * 73 + j * 29 + (j >> 3)) & 0xFF) for j in range(n))


def cases():
    """Return {case: [(partition_key, data_bytes, explicit_hash_key or None)]}."""
    c = {}
    c["golden"] = [
        ("pk-a", b"hello", None),
        ("pk-b", b"world", "42"),
        ("pk-a", b"!", None),
    ]
    c["single"] = [("only-key", b"just one user record", None)]

    lengths = [0, 1, 2, 5, 16, 31, 64, 100, 127, 128,
               129, 150, 200, 255, 256, 257, 280, 299, 300, 3]
    keys = ["bin-a", "bin-b", "bin-c"]
    c["binary"] = [(keys[i % 3], pattern(n, i), None) for i, n in enumerate(lengths)]

    long_key = "".join(chr(ord("a") + (j % 26)) for j in range(256))
    ukeys = ["clé-é", "键", "🙂-key", long_key, "Ωμέγα ключ", "e\u0301-combining"]
    c["unicode-keys"] = [
        (ukeys[i % len(ukeys)], ("data %d for %s" % (i, ukeys[i % len(ukeys)])).encode("utf-8"), None)
        for i in range(9)
    ]

    c["many"] = [("key-%03d" % (i % 300), i.to_bytes(4, "big") + pattern(6, i), None)
                 for i in range(2000)]

    # Explicit hash keys first appear in this order on purpose: integer-like
    # keys ("0", "42") ascending and before the non-index-like big ones, so
    # that the npm library's Object.keys() table-order bug is not triggered
    # (see README).
    c["ehk-mixed"] = [
        ("m-a", b"no ehk first", None),
        ("m-b", b"ehk zero", "0"),
        ("m-a", b"ehk 42", "42"),
        ("m-c", b"no ehk", None),
        ("m-b", b"ehk u128 max", U128_MAX),
        ("m-c", b"ehk 2^127", U127),
        ("m-a", b"ehk zero again", "0"),
        ("m-d", b"no ehk last-but-one", None),
        ("m-d", b"ehk u128 max again", U128_MAX),
    ]
    return c


def aggregate(records):
    """Feed records to RecordAggregator; return list of (AggRecord, [records])."""
    ra = agg.RecordAggregator(max_size=MAX_SIZE)
    out = []
    pending = []
    for pk, data, ehk in records:
        full = ra.add_user_record(pk, data, ehk)
        if full is not None:
            # the aggregate that filled up holds everything pending so far;
            # the current record went into the fresh one
            out.append((full, pending))
            pending = []
        pending.append((pk, data, ehk))
    last = ra.clear_and_get()
    if last is not None:
        out.append((last, pending))
    return out


def dump_json(meta):
    """Compact, diff-friendly JSON: one user record per line."""
    def j(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    head = ",\n".join(" %s:%s" % (j(k), j(v)) for k, v in meta.items() if k != "records")
    recs = ",\n".join("  " + j(r) for r in meta["records"])
    return "{\n%s,\n \"records\":[\n%s\n ]\n}\n" % (head, recs)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for old in glob.glob(os.path.join(OUT_DIR, "*.bin")) + glob.glob(os.path.join(OUT_DIR, "*.json")):
        os.remove(old)
    for name, records in cases().items():
        aggs = aggregate(records)
        for idx, (rec, recs) in enumerate(aggs):
            base = name if len(aggs) == 1 else "%s-%d" % (name, idx)
            pk, ehk, data = rec.get_contents()
            if rec.get_num_user_records() != len(recs):
                sys.exit("generate.py: internal bookkeeping error in case %s" % name)
            meta = {
                "producer": PRODUCER,
                "aggregate_partition_key": pk,
                "aggregate_explicit_hash_key": ehk,
                "records": [
                    {"partition_key": r_pk, "explicit_hash_key": r_ehk, "data_hex": r_data.hex()}
                    for r_pk, r_data, r_ehk in recs
                ],
            }
            with open(os.path.join(OUT_DIR, base + ".bin"), "wb") as f:
                f.write(data)
            with open(os.path.join(OUT_DIR, base + ".json"), "w", encoding="utf-8") as f:
                f.write(dump_json(meta))
            print("%-16s %5d records %7d bytes  agg pk=%r ehk=%r" % (
                base, len(recs), len(data), pk if len(pk) < 40 else pk[:37] + "...", ehk))


if __name__ == "__main__":
    main()
