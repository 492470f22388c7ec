"""Writes records into a Kinesis endpoint the way Python producers do: plain records with boto3's
PutRecords, and KPL aggregates built by aws-kinesis-agg sent with PutRecord. Prints one JSON line
per user record written (data, partition key, explicit hash key, position in its aggregate and
which aggregate), for kds-cli's tests to compare with `kds tail`.

Usage: boto3_writer.py ENDPOINT_URL STREAM
"""

import json
import sys

import aws_kinesis_agg  # noqa: F401  (patches sys.path for the protobuf module)
import boto3
from aws_kinesis_agg.aggregator import RecordAggregator

PLAIN = 50
AGGREGATES = 10


def main():
    endpoint, stream = sys.argv[1], sys.argv[2]
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="boto3",
        aws_secret_access_key="boto3",
    )
    written = []

    entries = []
    for i in range(PLAIN):
        key, data = "plain-%d" % i, "plain record %d" % i
        entries.append({"Data": data.encode(), "PartitionKey": key})
        written.append({"data": data, "partition_key": key, "explicit_hash_key": None,
                        "sub_sequence_number": None, "group": None})
    response = kinesis.put_records(StreamName=stream, Records=entries)
    if response["FailedRecordCount"]:
        sys.exit("boto3_writer.py: PutRecords failed: %r" % response)

    for group in range(AGGREGATES):
        aggregator = RecordAggregator()
        for position in range(group + 2):
            key = "agg-%d-%d" % (group, position)
            data = "aggregated record %d.%d" % (group, position)
            hash_key = str(170141183460469231731687303715884105728 + position) if position == 1 else None
            aggregator.add_user_record(key, data.encode(), hash_key)
            written.append({"data": data, "partition_key": key, "explicit_hash_key": hash_key,
                            "sub_sequence_number": position, "group": group})
        record = aggregator.clear_and_get()
        key, hash_key, data = record.get_contents()
        request = {"StreamName": stream, "Data": data, "PartitionKey": key}
        if hash_key:
            request["ExplicitHashKey"] = hash_key
        kinesis.put_record(**request)

    for entry in written:
        print(json.dumps(entry))


if __name__ == "__main__":
    main()
