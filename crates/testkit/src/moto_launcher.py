"""Starts moto's S3 server (moto.server.main, the code behind `moto_server`) for pgdr's tests,
with two changes made before it serves anything:

1. Object requests are served one at a time. moto 5.2's conditional create (If-None-Match: *)
   looks for the key and then stores it in two steps, so two concurrent conditional PUTs of one
   key can both succeed there; real S3, MinIO and Ceph RGW decide it atomically. Serialising
   S3Response.key_response gives moto the same atomicity, so a test of concurrent pushes of one
   name tests pgdr, not moto's race.
2. Injected faults: while the file named by PGDR_MOTO_FAULTS holds a number N > 0, the next N
   requests are answered 503 SlowDown (S3's throttling answer) and N is decremented, so tests
   can see retries with backoff and the failure after them against the real server.

make bench (tests/bench/bench-wal-archive-s3.sh) sets PGDR_MOTO_CONCURRENT=1: object requests
served concurrently, as a real store serves them.
"""
import os
import sys
import threading

from moto.s3.responses import S3Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
import moto.server

_key_lock = threading.Lock()
_key_response = S3Response.key_response


def _locked_key_response(self, *args, **kwargs):
    with _key_lock:
        return _key_response(self, *args, **kwargs)


if os.environ.get("PGDR_MOTO_CONCURRENT") != "1":
    S3Response.key_response = _locked_key_response


_faults_lock = threading.Lock()
_call = DomainDispatcherApplication.__call__


def _take_fault():
    path = os.environ.get("PGDR_MOTO_FAULTS")
    if not path:
        return False
    with _faults_lock:
        try:
            with open(path) as f:
                n = int(f.read().strip() or "0")
        except (OSError, ValueError):
            return False
        if n <= 0:
            return False
        with open(path, "w") as f:
            f.write(str(n - 1))
        return True


def _faulty_call(self, environ, start_response):
    if _take_fault():
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>"
        )
        start_response(
            "503 Slow Down",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]
    return _call(self, environ, start_response)


DomainDispatcherApplication.__call__ = _faulty_call

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
