"""The Kinto side of bench/bench_kinto.py; runs in bench/.kinto-venv (kinto-http is never a
dependency of Zhuxun). Reads visits as JSON on stdin, writes them with kinto-http's batch,
prints {"seconds": …, "requests": …, "bytes_up": …} as JSON.

    bench/.kinto-venv/bin/python bench/kinto_client.py http://127.0.0.1:8888/v1 < visits.json
"""

from __future__ import annotations

import json
import sys
import time

import requests.adapters
from kinto_http import Client

sent = {"requests": 0, "bytes_up": 0}
_send = requests.adapters.HTTPAdapter.send


def counting_send(self, request, **kwargs):  # type: ignore[no-untyped-def]
    sent["requests"] += 1
    sent["bytes_up"] += len(request.body or b"")
    return _send(self, request, **kwargs)


def main() -> int:
    url = sys.argv[1]
    visits = json.load(sys.stdin)
    client = Client(server_url=url, auth=("bench", "bench-password"), bucket="bench",
                    collection="visits")  # fmt: skip
    client.create_bucket(id="bench", if_not_exists=True)
    client.create_collection(id="visits", bucket="bench", if_not_exists=True)
    requests.adapters.HTTPAdapter.send = counting_send
    started = time.perf_counter()
    with client.batch() as batch:
        for visit in visits:
            batch.create_record(id=visit["id"], data={k: v for k, v in visit.items() if k != "id"})
    seconds = time.perf_counter() - started
    counted = dict(sent)
    stored = len(client.get_records())
    print(json.dumps({"seconds": seconds, "stored": stored, **counted}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
