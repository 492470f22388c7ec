#!/usr/bin/env python3
""""Theirs decode ours": deaggregate <case>.bin files with the PyPI package
aws-kinesis-agg and compare against <case>.json.

Usage:
    /tmp/aggvenv/bin/python verify.py [DIR]      # default DIR: ../ours next to this script
    /tmp/aggvenv/bin/python verify.py --self-test  # DIR = python/ (the library's own vectors)

Install (once, outside the repo; works offline afterwards):
    python3 -m venv /tmp/aggvenv
    /tmp/aggvenv/bin/pip install aws-kinesis-agg==1.2.3 six

DIR holds <case>.bin + <case>.json pairs (format: see README.md). Each .bin is
passed to iter_deaggregate_records(..., data_format='Boto3') as the Data of a
Kinesis record. Checked, per file: the library recognised the record as a KPL
aggregate (magic + MD5 verified + protobuf parsed; the library silently passes
the record through unchanged if any of those fail), the number of user
records, and for each record in order: partition key, data, sub-sequence
number, and the explicit hash key where the expected one is non-null. Where
null is expected but the library reports one, that is printed as a note (known
library quirk: it returns explicit_hash_key_table[0] for records without an
explicit_hash_key_index) and does not fail.

A .bin that does not start with the KPL magic is treated as a deliberately
non-aggregated single record: its JSON must list exactly one record and the
library must pass it through unchanged.

--self-test additionally corrupts the MD5 of one vector and checks that the
library then refuses to deaggregate it (so the checksum check is live).

Exit status: 0 on success, 1 on any mismatch, 2 on usage/setup errors.
"""
import argparse
import base64
import contextlib
import glob
import hashlib
import io
import json
import os
import sys

try:
    # aggregator first: it patches sys.path so that messages_pb2 imports.
    import aws_kinesis_agg
    import aws_kinesis_agg.aggregator  # noqa: F401
    from aws_kinesis_agg.deaggregator import iter_deaggregate_records
except ImportError as e:  # pragma: no cover
    sys.exit("verify.py: cannot import aws_kinesis_agg (%s); install it with "
             "'pip install aws-kinesis-agg==1.2.3 six'" % e)

PROG = "verify.py"
HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"\xf3\x89\x9a\xc2"


class Mismatch(Exception):
    pass


def deaggregate(data, agg_pk):
    """Run the library on one Kinesis record; return (user_records, stderr_text)."""
    record = {
        "Data": data,
        "PartitionKey": agg_pk if agg_pk is not None else "agg-pk",
        "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "ApproximateArrivalTimestamp": 0,
    }
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out = list(iter_deaggregate_records([record], data_format="Boto3"))
    return out, err.getvalue()


def diagnose(data):
    """Explain why the library did not treat data as an aggregate."""
    if data[:4] != MAGIC:
        return "no KPL magic"
    body, digest = data[4:-16], data[-16:]
    if len(data) <= 20:
        return "too short (library needs > 20 bytes)"
    if hashlib.md5(body).digest() != digest:
        return "MD5 mismatch (stored %s, computed %s)" % (digest.hex(), hashlib.md5(body).hexdigest())
    return "protobuf parse failed in the library"


def check_file(bin_path, json_path, notes):
    with open(bin_path, "rb") as f:
        data = f.read()
    with open(json_path, encoding="utf-8") as f:
        meta = json.load(f)
    expected = meta["records"]
    name = os.path.basename(bin_path)
    out, err_text = deaggregate(data, meta.get("aggregate_partition_key"))

    if data[:4] != MAGIC:
        # deliberately non-aggregated record: must be passed through unchanged
        if len(expected) != 1:
            raise Mismatch("%s: no KPL magic but JSON lists %d records" % (name, len(expected)))
        if len(out) != 1 or out[0]["kinesis"].get("aggregated"):
            raise Mismatch("%s: expected pass-through of a non-aggregated record, got %d records"
                           % (name, len(out)))
        got = out[0]["kinesis"]["data"]
        if got != bytes.fromhex(expected[0]["data_hex"]):
            raise Mismatch("%s: pass-through data differs from JSON record data" % name)
        notes.append("%s: not aggregated (no magic), passed through as a plain record" % name)
        return 1

    not_agg = [r for r in out if not r.get("kinesis", {}).get("aggregated")]
    if not_agg:
        raise Mismatch("%s: library did not deaggregate it (%s)" % (name, diagnose(data)))
    if len(out) != len(expected):
        extra = (" ; library stderr: " + err_text.strip().splitlines()[0]) if err_text.strip() else ""
        raise Mismatch("%s: library returned %d user records, JSON expects %d%s"
                       % (name, len(out), len(expected), extra))
    for i, (got, exp) in enumerate(zip(out, expected)):
        k = got["kinesis"]
        where = "%s record %d" % (name, i)
        if k["subSequenceNumber"] != i:
            raise Mismatch("%s: subSequenceNumber %r" % (where, k["subSequenceNumber"]))
        if k["partitionKey"] != exp["partition_key"]:
            raise Mismatch("%s: partition key %r, expected %r" % (where, k["partitionKey"], exp["partition_key"]))
        got_data = base64.b64decode(k["data"])  # the library re-base64-encodes user data
        exp_data = bytes.fromhex(exp["data_hex"])
        if got_data != exp_data:
            raise Mismatch("%s: data differs (got %d bytes %s..., expected %d bytes %s...)"
                           % (where, len(got_data), got_data[:16].hex(), len(exp_data), exp_data[:16].hex()))
        exp_ehk, got_ehk = exp.get("explicit_hash_key"), k.get("explicitHashKey")
        if exp_ehk is not None:
            if got_ehk != exp_ehk:
                raise Mismatch("%s: explicit hash key %r, expected %r" % (where, got_ehk, exp_ehk))
        elif got_ehk is not None:
            notes.append("%s: no EHK expected, library reports %r (table[0] quirk)" % (where, got_ehk))
    if err_text.strip():
        notes.append("%s: library wrote to stderr: %s" % (name, err_text.strip().splitlines()[0]))
    return len(out)


def pairs(directory):
    bins = sorted(glob.glob(os.path.join(directory, "*.bin")))
    jsons = sorted(glob.glob(os.path.join(directory, "*.json")))
    bin_bases = {os.path.splitext(p)[0] for p in bins}
    json_bases = {os.path.splitext(p)[0] for p in jsons}
    problems = ["%s.json without .bin" % os.path.basename(b) for b in sorted(json_bases - bin_bases)]
    problems += ["%s.bin without .json" % os.path.basename(b) for b in sorted(bin_bases - json_bases)]
    return [(b + ".bin", b + ".json") for b in sorted(bin_bases & json_bases)], problems


def tamper_check(directory):
    """Flip one MD5 byte of the first vector; the library must refuse it."""
    ps, _ = pairs(directory)
    if not ps:
        raise Mismatch("tamper check: no vectors")
    with open(ps[0][0], "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 0x01
    out, _ = deaggregate(bytes(data), "x")
    if any(r["kinesis"].get("aggregated") for r in out):
        raise Mismatch("tamper check: library accepted %s with a corrupted MD5" % os.path.basename(ps[0][0]))
    return os.path.basename(ps[0][0])


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("directory", nargs="?", help="directory with <case>.bin/<case>.json (default ../ours)")
    ap.add_argument("--self-test", action="store_true",
                    help="verify the library's own vectors in python/ (and a corrupted-MD5 check)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print per-file results")
    args = ap.parse_args()
    if args.self_test and args.directory:
        ap.error("--self-test takes no directory")
    directory = os.path.join(HERE, "python") if args.self_test else (
        args.directory or os.path.normpath(os.path.join(HERE, "..", "ours")))
    if not os.path.isdir(directory):
        print("%s: directory not found: %s" % (PROG, directory), file=sys.stderr)
        return 2
    ps, problems = pairs(directory)
    if problems:
        for p in problems:
            print("%s: FAIL: %s" % (PROG, p), file=sys.stderr)
        return 1
    if not ps:
        print("%s: no <case>.bin/<case>.json pairs in %s" % (PROG, directory), file=sys.stderr)
        return 1
    notes, failures, total = [], [], 0
    for b, j in ps:
        try:
            n = check_file(b, j, notes)
            total += n
            if args.verbose:
                print("  %-24s %5d records ok" % (os.path.basename(b), n))
        except Mismatch as e:
            failures.append(str(e))
        except (ValueError, KeyError, TypeError) as e:
            failures.append("%s: malformed JSON/vector: %r" % (os.path.basename(j), e))
    if args.self_test and not failures:
        try:
            name = tamper_check(directory)
            notes.append("tamper check: corrupted MD5 of %s was rejected" % name)
        except Mismatch as e:
            failures.append(str(e))
    quirk_notes = [n for n in notes if "table[0] quirk" in n]
    for n in notes:
        if args.verbose or "table[0] quirk" not in n:
            print("%s: note: %s" % (PROG, n))
    if quirk_notes and not args.verbose:
        print("%s: note: %d record(s) without an expected EHK got one from the library "
              "(table[0] quirk), e.g. %s" % (PROG, len(quirk_notes), quirk_notes[0]))
    if failures:
        for f in failures:
            print("%s: FAIL: %s" % (PROG, f), file=sys.stderr)
        print("%s: %d files, %d failed (%s)" % (PROG, len(ps), len(failures), directory), file=sys.stderr)
        return 1
    print("%s: %d files, %d records: ok" % (PROG, len(ps), total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
