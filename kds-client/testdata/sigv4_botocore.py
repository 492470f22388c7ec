"""Signatures botocore computes for Kinesis and DynamoDB requests, the oracle of kds-client's signing test.

Run: python3 kds-client/testdata/sigv4_botocore.py > kds-client/testdata/sigv4_botocore.json
(botocore 1.43.11 produced the checked-in file.)
"""
import datetime
import json
from unittest import mock

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TIME = datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc)
CASES = [
    # name, url, content type, target, body, session token, region, service
    ("json_regional", "https://kinesis.us-east-1.amazonaws.com/", "application/x-amz-json-1.1",
     "Kinesis_20131202.DescribeStreamSummary", b'{"StreamName":"orders"}', None, "us-east-1", "kinesis"),
    ("cbor_with_session_token", "https://kinesis.eu-west-1.amazonaws.com/", "application/x-amz-cbor-1.1",
     "Kinesis_20131202.GetRecords", bytes([0xA1, 0x6D]) + b"ShardIterator" + bytes([0x64]) + b"AAAA",
     "FQoGZXIvYXdzEXAMPLETOKEN", "eu-west-1", "kinesis"),
    ("explicit_port", "http://127.0.0.1:4567/", "application/x-amz-json-1.1",
     "Kinesis_20131202.ListStreams", b"{}", None, "us-east-1", "kinesis"),
    ("dynamodb_lease_table", "https://dynamodb.eu-west-1.amazonaws.com/", "application/x-amz-json-1.0",
     "DynamoDB_20120810.Scan", b'{"TableName":"leases","ConsistentRead":true}', None, "eu-west-1", "dynamodb"),
]

out = []
for name, url, content_type, target, body, token, region, service in CASES:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": content_type, "X-Amz-Target": target})
    with mock.patch("botocore.auth.get_current_datetime", return_value=TIME):
        SigV4Auth(credentials, service, region).add_auth(request)
    out.append({
        "name": name, "url": url, "content_type": content_type, "target": target,
        "body_hex": body.hex(), "session_token": token, "region": region, "service": service,
        "time": "2015-08-30T12:36:00Z",
        "authorization": request.headers["Authorization"],
        "x_amz_date": request.headers["X-Amz-Date"],
    })
print(json.dumps({"botocore": botocore.__version__, "cases": out}, indent=2))
