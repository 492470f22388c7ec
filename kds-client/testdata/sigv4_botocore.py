"""Signatures botocore computes for Kinesis requests, the oracle of kds-client's signing test.

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
    # name, url, content type, target, body, session token, region
    ("json_regional", "https://kinesis.us-east-1.amazonaws.com/", "application/x-amz-json-1.1",
     "Kinesis_20131202.DescribeStreamSummary", b'{"StreamName":"orders"}', None, "us-east-1"),
    ("cbor_with_session_token", "https://kinesis.eu-west-1.amazonaws.com/", "application/x-amz-cbor-1.1",
     "Kinesis_20131202.GetRecords", bytes([0xA1, 0x6D]) + b"ShardIterator" + bytes([0x64]) + b"AAAA",
     "FQoGZXIvYXdzEXAMPLETOKEN", "eu-west-1"),
    ("explicit_port", "http://127.0.0.1:4567/", "application/x-amz-json-1.1",
     "Kinesis_20131202.ListStreams", b"{}", None, "us-east-1"),
]

out = []
for name, url, content_type, target, body, token, region in CASES:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": content_type, "X-Amz-Target": target})
    with mock.patch("botocore.auth.get_current_datetime", return_value=TIME):
        SigV4Auth(credentials, "kinesis", region).add_auth(request)
    out.append({
        "name": name, "url": url, "content_type": content_type, "target": target,
        "body_hex": body.hex(), "session_token": token, "region": region,
        "time": "2015-08-30T12:36:00Z",
        "authorization": request.headers["Authorization"],
        "x_amz_date": request.headers["X-Amz-Date"],
    })
print(json.dumps({"botocore": botocore.__version__, "cases": out}, indent=2))
