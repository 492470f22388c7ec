#!/usr/bin/env python3
"""Capture real kinesis-local (kinesis-mock) responses for every Kinesis operation.

Runs one scenario per protocol (JSON 1.1 and CBOR 1.1) against an already
running kinesis-local and writes every response body, byte for byte, next to a
``.meta.json`` describing the request.  See README.md beside this file.

Requirements: Python 3.11, ``cbor2``, ``httpx[http2]``.

Usage:
    python3 capture.py [--plain http://127.0.0.1:4568] [--tls https://127.0.0.1:4567]
                       [--out DIR] [--protocols json,cbor]

Only loopback endpoints are accepted.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import struct
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import cbor2
import httpx

TARGET_PREFIX = "Kinesis_20131202."
REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
CONTENT_TYPES = {
    "json": "application/x-amz-json-1.1",
    "cbor": "application/x-amz-cbor-1.1",
}
STREAM_NAMES = {"json": "capture-json", "cbor": "capture-cbor"}
CONSUMER_NAME = "capture-consumer"

# Binary payloads, deliberately not valid UTF-8.
PUT_RECORD_DATA = b"\x00\x01\x02\xfe\xff\x80\xc3\x28kds-put-record"
PUT_RECORDS_DATA = [
    b"\xff\xfe\xfd\x00first",
    b"\x80\x81\x82\x00second",
    b"\xc0\xc1\xf5\xf8third-explicit-hash-key",
]
# 2**127: an exact decimal hash key, sent as a string.
EXPLICIT_HASH_KEY = str(2**127)
OVERSIZE_LEN = 1024 * 1024 + 1  # 1 MiB + 1 byte of data


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    sys.exit(f"refusing non-loopback endpoint {url!r}")


# ---------------------------------------------------------------------------
# event stream (application/vnd.amazon.eventstream) parsing, for detection and
# for the notes written into the SubscribeToShard meta files
# ---------------------------------------------------------------------------

HEADER_TYPE_NAMES = {
    0: "bool_true", 1: "bool_false", 2: "byte", 3: "short", 4: "integer",
    5: "long", 6: "byte_array", 7: "string", 8: "timestamp", 9: "uuid",
}


def parse_event_headers(raw: bytes) -> list[dict]:
    out = []
    i = 0
    while i < len(raw):
        nlen = raw[i]
        name = raw[i + 1:i + 1 + nlen].decode()
        i += 1 + nlen
        t = raw[i]
        i += 1
        if t in (0, 1):
            val = t == 0
        elif t == 2:
            val = struct.unpack_from(">b", raw, i)[0]; i += 1
        elif t == 3:
            val = struct.unpack_from(">h", raw, i)[0]; i += 2
        elif t == 4:
            val = struct.unpack_from(">i", raw, i)[0]; i += 4
        elif t in (5, 8):
            val = struct.unpack_from(">q", raw, i)[0]; i += 8
        elif t in (6, 7):
            vlen = struct.unpack_from(">H", raw, i)[0]; i += 2
            b = raw[i:i + vlen]; i += vlen
            val = b.decode() if t == 7 else b.hex()
        elif t == 9:
            val = raw[i:i + 16].hex(); i += 16
        else:
            raise ValueError(f"unknown header type {t}")
        out.append({"name": name, "type": t, "type_name": HEADER_TYPE_NAMES[t], "value": val})
    return out


def parse_event_stream(buf: bytes) -> tuple[list[dict], int]:
    """Return (complete frames, number of trailing bytes not forming a frame)."""
    frames = []
    off = 0
    while len(buf) - off >= 12:
        total, hlen, pcrc = struct.unpack_from(">III", buf, off)
        if total < 16 or len(buf) - off < total:
            break
        frame = buf[off:off + total]
        headers = parse_event_headers(frame[12:12 + hlen])
        payload = frame[12 + hlen:total - 4]
        mcrc = struct.unpack_from(">I", frame, total - 4)[0]
        frames.append({
            "offset": off,
            "total_length": total,
            "headers_length": hlen,
            "prelude_crc_ok": zlib.crc32(frame[:8]) == pcrc,
            "message_crc_ok": zlib.crc32(frame[:total - 4]) == mcrc,
            "headers": headers,
            "payload": payload,
        })
        off += total
    return frames, len(buf) - off


def decode_payload(payload: bytes, content_type: str | None):
    if not payload:
        return None
    try:
        if content_type and "cbor" in content_type:
            return cbor2.loads(payload)
        return json.loads(payload)
    except Exception as exc:  # noqa: BLE001 - best effort, for notes only
        return f"<undecodable: {exc}>"


def frame_summary(frame: dict) -> dict:
    hdrs = {h["name"]: h["value"] for h in frame["headers"]}
    decoded = decode_payload(frame["payload"], hdrs.get(":content-type"))
    summary = {
        "offset": frame["offset"],
        "total_length": frame["total_length"],
        "headers_length": frame["headers_length"],
        "payload_length": len(frame["payload"]),
        "prelude_crc_ok": frame["prelude_crc_ok"],
        "message_crc_ok": frame["message_crc_ok"],
        "headers": [{k: h[k] for k in ("name", "type", "type_name", "value")} for h in frame["headers"]],
    }
    if isinstance(decoded, dict):
        summary["payload_keys"] = sorted(decoded)
        if isinstance(decoded.get("Records"), list):
            summary["record_count"] = len(decoded["Records"])
    elif decoded is not None:
        summary["payload_decoded"] = repr(decoded)[:200]
    return summary


# ---------------------------------------------------------------------------


def is_open(shard: dict) -> bool:
    # kinesis-local sends "EndingSequenceNumber": null (JSON) / absent-or-null for open shards.
    return shard["SequenceNumberRange"].get("EndingSequenceNumber") is None


class Capturer:
    def __init__(self, proto: str, plain: str, tls: str, out: Path):
        self.proto = proto
        self.ct = CONTENT_TYPES[proto]
        self.stream = STREAM_NAMES[proto]
        self.plain = plain
        self.tls = tls
        self.dir = out / proto
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0
        # A fresh HTTP/1.1 connection per request: in one trial run a kept-alive
        # connection was reset by the emulator right after the error captures.
        self.client = httpx.Client(base_url=plain, timeout=30.0,
                                   limits=httpx.Limits(max_keepalive_connections=0))
        self.written: list[Path] = []

    # -- encoding ---------------------------------------------------------
    def blob(self, b: bytes):
        return base64.b64encode(b).decode() if self.proto == "json" else b

    def timestamp(self, epoch_seconds: float):
        if self.proto == "json":
            return round(epoch_seconds, 3)
        return cbor2.CBORTag(1, int(round(epoch_seconds * 1000)))

    def encode(self, body: dict) -> bytes:
        if self.proto == "json":
            return json.dumps(body, separators=(",", ":")).encode()
        return cbor2.dumps(body)

    def decode(self, raw: bytes):
        if not raw:
            return None
        try:
            return json.loads(raw) if self.proto == "json" else cbor2.loads(raw)
        except Exception:  # noqa: BLE001
            return None

    def headers(self, target: str, body: bytes) -> dict:
        now = dt.datetime.now(dt.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{now.strftime('%Y%m%d')}/{REGION}/kinesis/aws4_request"
        # Shaped like SigV4; the emulator does not verify the signature.
        sig = hashlib.sha256(amz_date.encode() + body).hexdigest()
        return {
            "Content-Type": self.ct,
            "X-Amz-Target": target,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}"
            ),
        }

    # -- saving -------------------------------------------------------------
    def save(self, op: str, variant: str | None, status: int, resp_headers, body: bytes,
             request: dict | None, raw_request: bytes | None, notes: str,
             request_description: str | None = None, extra: dict | None = None) -> None:
        self.n += 1
        name = f"{self.n:02d}-{op}" + (f"-{variant}" if variant else "")
        (self.dir / f"{name}.body").write_bytes(body)
        meta = {
            "operation": op,
            "variant": variant,
            "status": status,
            "content_type": resp_headers.get("content-type"),
            "request_id": resp_headers.get("x-amzn-requestid"),
        }
        if request_description is not None:
            meta["request_description"] = request_description
        elif self.proto == "json":
            meta["request_json"] = request
        else:
            meta["request_body_hex"] = raw_request.hex() if raw_request is not None else None
        meta["notes"] = notes
        if extra:
            meta.update(extra)
        mpath = self.dir / f"{name}.meta.json"
        mpath.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        self.written += [self.dir / f"{name}.body", mpath]
        print(f"  [{self.proto}] {name}: HTTP {status} ({len(body)} bytes)")

    # -- calls ----------------------------------------------------------------
    def call(self, op: str, body: dict, *, variant: str | None = None, save: bool = True,
             notes: str = "", target: str | None = None, request_description: str | None = None):
        raw = self.encode(body)
        target = target or TARGET_PREFIX + op
        r = self.client.post("/", headers=self.headers(target, raw), content=raw)
        parsed = self.decode(r.content)
        if save:
            self.save(op, variant, r.status_code, r.headers, r.content,
                      None if request_description else body,
                      None if request_description else raw, notes,
                      request_description=request_description)
        return r.status_code, parsed

    def ok(self, op: str, body: dict, **kw):
        status, parsed = self.call(op, body, **kw)
        if status != 200:
            raise RuntimeError(f"{self.proto} {op} failed: HTTP {status}: {parsed!r}")
        return parsed

    def wait_stream_active(self, label: str, save_first: bool = False, variant: str | None = None) -> int:
        polls = 0
        deadline = time.monotonic() + 30
        first = True
        while True:
            polls += 1
            save = save_first and first
            status, parsed = self.call(
                "DescribeStreamSummary", {"StreamName": self.stream}, save=save,
                variant=variant,
                notes=f"First poll after {label}; polling continued until ACTIVE." if save else "")
            first = False
            if status == 200 and parsed["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return polls
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.proto}: stream not ACTIVE after {label}")
            time.sleep(0.25)

    def list_all_shards(self) -> list[dict]:
        shards = []
        body = {"StreamName": self.stream}
        while True:
            parsed = self.ok("ListShards", body, save=False)
            shards += parsed["Shards"]
            tok = parsed.get("NextToken")
            if not tok:
                return shards
            body = {"NextToken": tok}

    # -- SubscribeToShard over HTTP/2 ----------------------------------------
    def subscribe(self, consumer_arn: str, shard_id: str, variant: str | None = None,
                  notes: str = "") -> None:
        body = {
            "ConsumerARN": consumer_arn,
            "ShardId": shard_id,
            "StartingPosition": {"Type": "TRIM_HORIZON"},
        }
        raw = self.encode(body)
        attempts = [
            ("TLS h2 (ALPN) " + self.tls, dict(http2=True, verify=False), self.tls),
            ("h2c prior knowledge " + self.plain, dict(http1=False, http2=True), self.plain),
        ]
        errors = []
        for label, kw, base in attempts:
            try:
                self._subscribe_once(label, kw, base, body, raw, variant, notes)
                return
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{label}: {type(exc).__name__}: {exc}")
                print(f"  [{self.proto}] SubscribeToShard via {label} failed: {exc}")
        raise RuntimeError("SubscribeToShard failed: " + " | ".join(errors))

    def _subscribe_once(self, label: str, kw: dict, base: str, body: dict, raw: bytes,
                        variant: str | None, extra_notes: str) -> None:
        # A read that waits longer than 3 s ends the capture.
        timeout = httpx.Timeout(10.0, read=3.0)
        buf = bytearray()
        started = time.monotonic()
        found_records = False
        found_exception = False
        with httpx.Client(base_url=base, timeout=timeout, **kw) as client:
            hdrs = self.headers(TARGET_PREFIX + "SubscribeToShard", raw)
            with client.stream("POST", "/", headers=hdrs, content=raw) as r:
                status = r.status_code
                http_version = r.http_version
                resp_headers = r.headers
                it = r.iter_raw()
                while time.monotonic() - started < 3.0 and not (found_records or found_exception):
                    try:
                        chunk = next(it)
                    except StopIteration:
                        break
                    except httpx.ReadTimeout:
                        break
                    buf += chunk
                    if status == 200:
                        frames, _ = parse_event_stream(bytes(buf))
                        for f in frames:
                            s = frame_summary(f)
                            if s.get("record_count"):
                                found_records = True
                            if any(h["name"] == ":message-type" and h["value"] == "exception"
                                   for h in s["headers"]):
                                found_exception = True
        elapsed = time.monotonic() - started
        body_bytes = bytes(buf)
        extra = {"http_version": http_version, "endpoint": label,
                 "read_seconds": round(elapsed, 3)}
        if status == 200:
            frames, trailing = parse_event_stream(body_bytes)
            extra["frames"] = [frame_summary(f) for f in frames]
            extra["trailing_partial_bytes"] = trailing
        notes = (f"Raw {resp_headers.get('content-type')} bytes read over {http_version} via {label} "
                 f"for {elapsed:.2f}s; stopped {'after the first event carrying records' if found_records else 'after an exception frame' if found_exception else 'on timeout/end of stream'}. "
                 "The 'frames' field is this script's decoding of the saved bytes." + (" " + extra_notes if extra_notes else ""))
        self.save("SubscribeToShard", variant, status, resp_headers, body_bytes, body, raw, notes, extra=extra)
        if status != 200:
            raise RuntimeError(f"HTTP {status}")

    # -- the scenario ---------------------------------------------------------
    def run(self) -> None:
        s = self.stream
        print(f"== {self.proto}: stream {s}")
        # Leftover from an earlier run? Delete it first (not saved).
        status, _ = self.call("DescribeStreamSummary", {"StreamName": s}, save=False)
        if status == 200:
            self.ok("DeleteStream", {"StreamName": s, "EnforceConsumerDeletion": True}, save=False)
            for _ in range(100):
                if self.call("DescribeStreamSummary", {"StreamName": s}, save=False)[0] != 200:
                    break
                time.sleep(0.25)

        self.ok("CreateStream", {"StreamName": s, "ShardCount": 2})
        polls = self.wait_stream_active("CreateStream", save_first=True, variant="poll")
        print(f"  [{self.proto}] ACTIVE after {polls} poll(s)")
        desc = self.ok("DescribeStream", {"StreamName": s})
        arn = desc["StreamDescription"]["StreamARN"]
        self.ok("DescribeStreamSummary", {"StreamName": s})
        self.ok("ListStreams", {})

        page1 = self.ok("ListShards", {"StreamName": s, "MaxResults": 1}, variant="page1",
                        notes="MaxResults 1 with StreamName.")
        token = page1.get("NextToken")
        if not token:
            raise RuntimeError("ListShards page 1 returned no NextToken")
        self.ok("ListShards", {"NextToken": token, "MaxResults": 1}, variant="page2",
                notes="Only NextToken and MaxResults sent (no StreamName).")
        self.ok("ListShards", {"StreamName": s, "ShardFilter": {"Type": "AT_LATEST"}},
                variant="filter-at-latest")

        put = self.ok("PutRecord", {"StreamName": s, "PartitionKey": "pk-1",
                                    "Data": self.blob(PUT_RECORD_DATA)},
                      notes=f"Data bytes (hex): {PUT_RECORD_DATA.hex()}")
        shard_id = put["ShardId"]
        recs = [
            {"Data": self.blob(PUT_RECORDS_DATA[0]), "PartitionKey": "pk-1"},
            {"Data": self.blob(PUT_RECORDS_DATA[1]), "PartitionKey": "pk-2"},
            {"Data": self.blob(PUT_RECORDS_DATA[2]), "PartitionKey": "pk-3",
             "ExplicitHashKey": EXPLICIT_HASH_KEY},
        ]
        self.ok("PutRecords", {"StreamName": s, "Records": recs},
                notes="Data bytes (hex): " + ", ".join(d.hex() for d in PUT_RECORDS_DATA)
                + f"; third record has ExplicitHashKey {EXPLICIT_HASH_KEY} (2**127).")

        it_trim = self.ok("GetShardIterator", {"StreamName": s, "ShardId": shard_id,
                                               "ShardIteratorType": "TRIM_HORIZON"},
                          variant="trim-horizon",
                          notes=f"ShardId is the shard PutRecord reported ({shard_id}).")["ShardIterator"]
        ts = time.time() - 60
        self.ok("GetShardIterator", {"StreamName": s, "ShardId": shard_id,
                                     "ShardIteratorType": "AT_TIMESTAMP",
                                     "Timestamp": self.timestamp(ts)},
                variant="at-timestamp",
                notes=f"Timestamp = now - 60 s = {ts:.3f} epoch seconds "
                      + ("(JSON number, seconds)." if self.proto == "json"
                         else "(CBOR tag 1 + unsigned integer epoch milliseconds)."))
        got = self.ok("GetRecords", {"ShardIterator": it_trim},
                      notes="Iterator from the TRIM_HORIZON GetShardIterator.")
        if not got.get("Records"):
            raise RuntimeError("GetRecords returned no records")
        next_it = got["NextShardIterator"]

        # ---- error responses (captured while the stream exists and still has the
        # default 1 MiB maximum record size, i.e. before UpdateMaxRecordSize) ----
        self.call("DescribeStreamSummary", {"StreamName": "capture-missing-stream"},
                  variant="error-not-found", notes="Stream does not exist.")
        self.call("GetRecords", {"ShardIterator": "this-is-not-a-shard-iterator"},
                  variant="error-garbage-iterator",
                  notes="Garbage ShardIterator string that is not valid base64 ('-' characters).")
        garbage_b64 = base64.b64encode(b"not a shard iterator, but valid base64 " * 4).decode()
        self.call("GetRecords", {"ShardIterator": garbage_b64},
                  variant="error-garbage-iterator-base64",
                  notes="Garbage ShardIterator that is valid base64 of ASCII text.")
        big = bytes(range(256)) * (OVERSIZE_LEN // 256) + b"\xff" * (OVERSIZE_LEN % 256)
        assert len(big) == OVERSIZE_LEN
        self.call("PutRecord", {"StreamName": s, "PartitionKey": "pk-big", "Data": self.blob(big)},
                  variant="error-oversize",
                  request_description=(
                      f"PutRecord {{StreamName: {s}, PartitionKey: pk-big, Data: {OVERSIZE_LEN} bytes "
                      f"(1 MiB + 1; bytes 0x00..0xff repeating, then 0xff)}} encoded as "
                      + ("JSON with Data base64" if self.proto == "json" else "CBOR with Data a byte string")
                      + "; request body not stored."),
                  notes="Data larger than 1 MiB; stream at default max record size.")
        self.call("GetRecords", {"ShardIterator": next_it, "Limit": 0},
                  variant="error-limit-0", notes="Valid iterator (NextShardIterator of GetRecords), Limit 0.")
        self.call("GetRecords", {"ShardIterator": next_it, "Limit": 10001},
                  variant="error-limit-10001", notes="Valid iterator (NextShardIterator of GetRecords), Limit 10001.")
        self.call("NoSuchOperation", {"StreamName": s}, target=TARGET_PREFIX + "NoSuchOperation",
                  variant="error-unknown-target",
                  notes="X-Amz-Target: Kinesis_20131202.NoSuchOperation")

        # ---- enhanced fan-out ----
        reg = self.ok("RegisterStreamConsumer", {"StreamARN": arn, "ConsumerName": CONSUMER_NAME})
        carn = reg["Consumer"]["ConsumerARN"]
        first = True
        for _ in range(120):
            c = self.ok("DescribeStreamConsumer", {"ConsumerARN": carn}, save=first, variant="poll",
                        notes="First poll after RegisterStreamConsumer; polling continued until ACTIVE.")
            first = False
            if c["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
                break
            time.sleep(0.25)
        else:
            raise RuntimeError("consumer never ACTIVE")
        self.ok("DescribeStreamConsumer", {"StreamARN": arn, "ConsumerName": CONSUMER_NAME},
                notes="By StreamARN + ConsumerName.")
        self.ok("ListStreamConsumers", {"StreamARN": arn})
        try:
            self.subscribe(carn, shard_id)
        except Exception as exc:  # noqa: BLE001
            print(f"  [{self.proto}] SubscribeToShard FAILED: {exc}")
        try:
            self.subscribe(carn, shard_id, variant="error-in-use",
                           notes="Second subscription for the same consumer and shard, made right after "
                                 "the first one was closed by the client.")
        except Exception as exc:  # noqa: BLE001
            print(f"  [{self.proto}] SubscribeToShard (second) FAILED: {exc}")
        self.ok("DeregisterStreamConsumer", {"ConsumerARN": carn})

        # ---- stream configuration ----
        self.ok("IncreaseStreamRetentionPeriod", {"StreamName": s, "RetentionPeriodHours": 48})
        self.ok("DecreaseStreamRetentionPeriod", {"StreamName": s, "RetentionPeriodHours": 24})
        self.ok("UpdateMaxRecordSize", {"StreamARN": arn, "MaxRecordSizeInKiB": 2048},
                notes="StreamARN only.")

        # ---- resharding ----
        shards = self.list_all_shards()
        open_shards = [sh for sh in shards if is_open(sh)]
        victim = open_shards[0]
        lo = int(victim["HashKeyRange"]["StartingHashKey"])
        hi = int(victim["HashKeyRange"]["EndingHashKey"])
        mid = (lo + hi + 1) // 2  # exact integer arithmetic
        self.ok("SplitShard", {"StreamName": s, "ShardToSplit": victim["ShardId"],
                               "NewStartingHashKey": str(mid)},
                notes=f"Split {victim['ShardId']} [{lo}, {hi}] at {mid} = (start + end + 1) // 2.")
        self.wait_stream_active("SplitShard", save_first=True, variant="after-split-poll")

        shards = self.list_all_shards()
        open_shards = sorted(
            (sh for sh in shards if is_open(sh)),
            key=lambda sh: int(sh["HashKeyRange"]["StartingHashKey"]))
        pair = None
        for a, b in zip(open_shards, open_shards[1:]):
            if int(a["HashKeyRange"]["EndingHashKey"]) + 1 == int(b["HashKeyRange"]["StartingHashKey"]):
                pair = (a, b)
                break
        if pair is None:
            raise RuntimeError("no adjacent open shards")
        self.ok("MergeShards", {"StreamName": s, "ShardToMerge": pair[0]["ShardId"],
                                "AdjacentShardToMerge": pair[1]["ShardId"]},
                notes=f"Merged adjacent open shards {pair[0]['ShardId']} + {pair[1]['ShardId']}.")
        self.wait_stream_active("MergeShards")

        n_open = sum(1 for sh in self.list_all_shards()
                     if is_open(sh))
        self.ok("UpdateShardCount", {"StreamName": s, "TargetShardCount": n_open * 2,
                                     "ScalingType": "UNIFORM_SCALING"},
                notes=f"{n_open} open shards -> {n_open * 2}.")
        self.wait_stream_active("UpdateShardCount")
        self.ok("DeleteStream", {"StreamName": s})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plain", default="http://127.0.0.1:4568")
    ap.add_argument("--tls", default="https://127.0.0.1:4567")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--protocols", default="json,cbor")
    args = ap.parse_args()
    check_loopback(args.plain)
    check_loopback(args.tls)
    out = Path(args.out)
    for proto in args.protocols.split(","):
        d = out / proto
        if d.exists():
            for f in d.iterdir():
                if f.suffix in (".body", ".json") and f.name[:2].isdigit():
                    f.unlink()
        Capturer(proto, args.plain, args.tls, out).run()


if __name__ == "__main__":
    main()
