"""How long a push holds the sync_counter lock, and push throughput (docs/scaling.md).

    .venv/bin/python -m tests.reliability.measure_lock [postgres|sqlite]

Not a test: it pushes over HTTP to the app on 127.0.0.1 (PostgreSQL at ZHUXUN_TEST_PG_URL in a
throwaway schema) and times `SqlSyncStore.apply_batch`, the transaction that takes the lock.
"""

import secrets
import statistics
import sys
import threading
import time
import uuid

from sqlalchemy import create_engine, text

import server.records.sql_store as store_mod
from tests.builders import make_change, visit_data
from tests.conftest import PG_URL, Api, LiveServer, make_app

backend = sys.argv[1] if len(sys.argv) > 1 else "postgres"
schema = f"m_{uuid.uuid4().hex[:10]}"
admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
config = {
    "TESTING": True,
    "ZHUXUN_ENV": "test",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ZHUXUN_PASSWORD_METHOD": "scrypt:1024:8:1",
}
if backend == "postgres":
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    config.update(
        SQLALCHEMY_DATABASE_URI=PG_URL,
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "pool_size": 10,
            "connect_args": {"options": f"-c search_path={schema}"},
        },
    )
else:
    config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:////tmp/{schema}.sqlite3"
holds = []
orig_writer_init = store_mod._Writer.__init__
orig_apply = store_mod.SqlSyncStore.apply_batch


def timed_apply(self, items, context, *, guard=None):
    t0 = time.perf_counter()
    try:
        return orig_apply(self, items, context, guard=guard)
    finally:
        holds.append((time.perf_counter() - t0, len(items)))


store_mod.SqlSyncStore.apply_batch = timed_apply
app = make_app(config)
live = LiveServer(app)
try:
    for batch, threads, per in ((20, 1, 30), (20, 4, 15), (100, 4, 5)):
        holds.clear()
        users = ["d1", "d2", "d3", "rev_b"][:threads]
        apis = [Api(live.url, u) for u in users]

        def run(api, n=per, b=batch):
            doc = {
                "d1": dict(doctor="D1"),
                "d2": dict(doctor="D2", assignment="A2", kind="posting"),
                "d3": dict(doctor="D3", assignment="A3", place="450999102201"),
                "rev_b": dict(doctor="D3", assignment="A3", place="450999102201"),
            }[api.username]
            for _ in range(n):
                api.push(
                    *(
                        make_change(
                            visit_data(
                                **doc,
                                patients=j % 30,
                                check_in=f"2026-03-{1 + j % 28:02d}T08:00:00+08:00",
                                check_out=f"2026-03-{1 + j % 28:02d}T12:00:00+08:00",
                                recorded_at=f"2026-03-{1 + j % 28:02d}T12:30:00+08:00",
                            )
                        )
                        for j in range(b)
                    )
                )

        t0 = time.perf_counter()
        ts = [threading.Thread(target=run, args=(a,)) for a in apis]
        [t.start() for t in ts]
        [t.join() for t in ts]
        wall = time.perf_counter() - t0
        total = batch * per * threads
        h = [x for x, _ in holds]
        print(
            f"{backend} batch={batch} threads={threads}: {total} visits in {wall:.1f}s = "
            f"{total / wall:.0f} visits/s, {len(h) / wall:.1f} pushes/s; store transaction "
            f"median {statistics.median(h) * 1000:.1f} ms, p90 {sorted(h)[int(len(h) * 0.9)] * 1000:.1f} ms, "
            f"sum {sum(h):.1f}s = {sum(h) / wall:.0%} of wall"
        )
finally:
    live.stop()
    from server.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if backend == "postgres":
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
