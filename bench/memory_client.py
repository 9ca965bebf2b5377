"""The device side of bench/bench_memory.py, in its own process so that its peak resident
memory is the client's alone: log in, sync the store's outbox (push in batches, pull to
quiet) with the offline client, print the summary and the process's VmHWM as JSON.

    python bench/memory_client.py STORE SERVER USERNAME PASSWORD
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offline_client.local import open_store  # noqa: E402
from offline_client.server_api import ServerAPI  # noqa: E402
from offline_client.sync_loop import run_sync  # noqa: E402


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    path, server, username, password = sys.argv[1:5]
    store = open_store(path)
    before = peak_rss_mib()
    session = ServerAPI.login(server, username, password, timeout_s=600)
    started = time.perf_counter()
    summary = run_sync(store, ServerAPI(session, timeout_s=600))
    seconds = time.perf_counter() - started
    store.close()
    print(json.dumps({**summary.to_json(), "rejected": len(summary.rejected),
                      "conflicts": len(summary.conflicts), "seconds": seconds,
                      "rss_before_mib": before, "peak_rss_mib": peak_rss_mib()}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
