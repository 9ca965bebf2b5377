"""What `/metrics` reports, in Prometheus' text format (issue 15; docs/operations.md, "What
to monitor"). The endpoints are server/api/monitoring.py; this module loads no Flask.

Counters and histograms (prometheus-client) count what each process did: pushes and pulls
with their latency, records by outcome and code, conflicts, failed sign-ins. Under gunicorn
every worker is a process of its own, so with several workers the client's multiprocess
mode is on (PROMETHEUS_MULTIPROC_DIR, which `zhuxun serve` sets and empties at start): each
worker writes its values to files there, and a scrape of any worker adds them all up.

Gauges of the database's state (the webhook and evaluation queues' depth, open flags by
rule, open conflicts, devices) are read from the database at scrape time, so every worker
answers them alike.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks its storage when first imported (with this module): multiprocess
# files when the variable was set by then. Scrapes follow that choice, not a later setting.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))

# The process's own metrics live in this registry, not the library's global default, so
# importing the module twice in tests or beside other libraries adds nothing elsewhere.
REGISTRY = CollectorRegistry(auto_describe=True)

# Sync over 2G takes seconds; a push of 2,000 changes on a busy SQLite can take tens.
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

PUSHES = Counter(
    "zhuxun_sync_pushes", "Push requests answered, by outcome", ["outcome"], registry=REGISTRY
)
PUSH_SECONDS = Histogram(
    "zhuxun_sync_push_seconds", "Time to answer a push", buckets=_SECONDS, registry=REGISTRY
)
PULLS = Counter(
    "zhuxun_sync_pulls", "Pull requests answered, by outcome", ["outcome"], registry=REGISTRY
)
PULL_SECONDS = Histogram(
    "zhuxun_sync_pull_seconds", "Time to answer a pull page", buckets=_SECONDS, registry=REGISTRY
)
RECORDS = Counter(
    "zhuxun_sync_records",
    "Pushed changes by result status (accepted, duplicate, conflict, rejected) and error code",
    ["collection", "status", "code"],
    registry=REGISTRY,
)
CONFLICTS = Counter(
    "zhuxun_sync_conflicts", "Pushed changes that ended in a conflict", registry=REGISTRY
)
LOGIN_FAILURES = Counter(
    "zhuxun_login_failures",
    "Failed sign-ins (wrong password, unknown or inactive user, revoked device)",
    ["via"],
    registry=REGISTRY,
)
DEVICE_REFUSALS = Counter(
    "zhuxun_device_refusals", "Syncs refused because the device is revoked", registry=REGISTRY
)


# --- counting ---------------------------------------------------------------------------


def observe_push(seconds: float, results: Iterable[dict[str, Any]], *, outcome: str = "ok") -> None:
    PUSHES.labels(outcome).inc()
    PUSH_SECONDS.observe(seconds)
    for result in results:
        status = str(result.get("status", ""))
        RECORDS.labels(
            str(result.get("collection") or ""), status, str(result.get("code") or "")
        ).inc()
        if status == "conflict":
            CONFLICTS.inc()


def observe_pull(seconds: float, *, outcome: str = "ok") -> None:
    PULLS.labels(outcome).inc()
    PULL_SECONDS.observe(seconds)


def login_failed(via: str) -> None:
    LOGIN_FAILURES.labels(via).inc()


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """`with timed() as elapsed: …; elapsed()` — seconds since the block began."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


# --- the database's state, read at scrape time ------------------------------------------

# The queues whose depth /metrics shows: name → a function of the session giving the
# number of items waiting (the webhook outbox, issue 14's evaluation queue).
QUEUE_DEPTHS: dict[str, Callable[[Any], int]] = {}


def queue_depth_source(name: str, count: Callable[[Any], int]) -> None:
    QUEUE_DEPTHS[name] = count


def _webhook_depth(session: Any) -> int:
    from server.models import WebhookEvent

    return int(
        session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.state == "pending")
        )
        or 0
    )


def _evaluation_depth(session: Any) -> int:
    from server import evaluation_queue  # issue 14's durable queue of stale doctor-weeks

    return evaluation_queue.pending(session)


queue_depth_source("webhook", _webhook_depth)
queue_depth_source("evaluation", _evaluation_depth)


class DatabaseState(Collector):
    """Gauges read from the database when scraped, with the scraping request's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from server.models import FlagRecord, SyncConflict

        session = self.session
        queues = GaugeMetricFamily(
            "zhuxun_queue_depth", "Items waiting in a work queue", labels=["queue"]
        )
        for name, count in sorted(QUEUE_DEPTHS.items()):
            try:
                queues.add_metric([name], count(session))
            except Exception:  # noqa: BLE001 - one queue's table missing must not hide the rest
                session.rollback()
                log.exception("queue depth of %s unavailable", name)
        yield queues
        flags = GaugeMetricFamily("zhuxun_open_flags", "Open flags by rule", labels=["rule"])
        rows = session.execute(
            select(FlagRecord.rule, func.count())
            .where(FlagRecord.state == "open")
            .group_by(FlagRecord.rule)
            .order_by(FlagRecord.rule)
        )
        for rule, count in rows:
            flags.add_metric([rule], count)
        yield flags
        yield GaugeMetricFamily(
            "zhuxun_open_conflicts",
            "Conflicts waiting for a person to settle them",
            value=session.scalar(
                select(func.count()).select_from(SyncConflict).where(SyncConflict.status == "open")
            )
            or 0,
        )
        devices = _device_counts(session)
        if devices is not None:
            family = GaugeMetricFamily("zhuxun_devices", "Registered devices", labels=["state"])
            for state, count in sorted(devices.items()):
                family.add_metric([state], count)
            yield family


def _device_counts(session: Any) -> dict[str, int] | None:
    from server.devices import count_devices

    return count_devices(session)


def scrape(session: Session) -> bytes:
    """The text a scrape answers: every process's metrics in multiprocess mode, this
    one's otherwise; and the database's state."""
    return generate_latest(_registry(session))


def _registry(session: Session) -> CollectorRegistry:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Own())
    registry.register(DatabaseState(session))
    return registry


class _Own(Collector):
    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory and empty it of an earlier run's files (a counter of a
    previous server run would otherwise be added to this one's). Call before workers
    start, and before prometheus_client is imported in them."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory
