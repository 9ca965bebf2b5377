"""Push ingest through the production server, against its floor and its limit, side by side.

    python bench/bench_push.py [--short] [--visits N] [--doctors D] [--clients C] [--chart]
                               [--no-save]

The same seeded demo-county visits, as the same gzip push bodies the offline client sends
(each doctor's own, up to 2,000 changes a body, in that doctor's logged-in session), go to:

1. `zhuxun serve` (gunicorn, 2 workers x 4 threads) on SQLite prepared with `zhuxun init-db`,
   `zhuxun import` (the county without visits) and a user per doctor: the whole push path —
   auth, validation, references, scope, merge, change-id memory, typed tables, the
   evaluation queue — twice, on databases of their own: with the flags judged in the
   requests (ZHUXUN_EVALUATION=request, the default) and with `zhuxun worker` judging them
   beside the server (ZHUXUN_EVALUATION=worker), where the time until the worker has
   emptied the queue is reported too;
2. bench/bare_app.py under the same gunicorn settings: validate and upsert only (the floor);
3. `sqlite3` executemany of the same rows in one transaction (the limit).

Also the peak resident memory (VmHWM) of a production worker, and with --chart the production
throughput at the batch sizes of CHART_BATCHES drawn to docs/bench-push-batch.svg. Goals
(issue 7): production >= 0.8x the bare endpoint and >= 5% of raw sqlite.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import common
import requests
from bare_app import SCHEMA, UPSERT

CHART_BATCHES = (10, 50, 200, 500, 2000)


def post_again_if_reset(http: requests.Session, url: str, body: bytes,
                        headers: dict[str, str]) -> requests.Response:  # fmt: skip
    """POST; once more if the connection was reset. A kept-alive connection idle longer
    than gunicorn's keep-alive (2 s) is closed by the server, and a POST sent on it just
    then is reset; a push is safe to send again (change ids: exactly once)."""
    try:
        answer = http.post(url, data=body, headers=headers, timeout=300)
    except requests.ConnectionError:
        answer = http.post(url, data=body, headers=headers, timeout=300)
    answer.raise_for_status()
    return answer


def push_all(url: str, path: str, sessions: dict[str, requests.Session],
             bodies: dict[str, list[bytes]], clients: int) -> tuple[float, Counter[str]]:  # fmt: skip
    """Push every doctor's bodies (a doctor's batches in order, doctors in parallel);
    the elapsed seconds and the answers counted by status (and code)."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    rejections: list[dict] = []  # the first batch's rejections, shown when there are any

    def one_doctor(doctor: str) -> Counter[str]:
        http = sessions[doctor]
        answers: Counter[str] = Counter()
        for body in bodies[doctor]:
            answer = post_again_if_reset(http, url + path, body, headers)
            results = answer.json()["results"]
            answers.update(" ".join(filter(None, (r["status"], r.get("code")))) for r in results)
            if not rejections:
                rejections.extend(r for r in results if r["status"] == "rejected")
        return answers

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = sum(pool.map(one_doctor, sorted(bodies)), Counter())
    if rejections:
        print(f"{url}{path} rejected, e.g.: {json.dumps(rejections[0], ensure_ascii=False)}")
    return time.perf_counter() - started, answers


def raw_sqlite(path: Path, visits: list[dict]) -> float:
    rows = [(v["id"], v["doctor"], v["place"], v["kind"], v["check_in"], v["check_out"],
             v["patients"], json.dumps(v, ensure_ascii=False)) for v in visits]  # fmt: skip
    db = common.sqlite_connect(path)
    db.execute(SCHEMA)
    started = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(UPSERT, rows)
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def renamed(visits: list[dict], suffix: str) -> list[dict]:
    return [dict(v, id=f"{v['id']}-{suffix}") for v in visits]


def batch_chart(work: Path, clients: int) -> list[tuple[int, float]]:
    """Push throughput at each of CHART_BATCHES changes a batch: 5 doctors with 1,000 visits
    each (a county of 6 doctors over 190 weeks), pushed again under new ids for each size, on
    a server of their own; (size, visits/s) pairs."""
    scenario = common.county(0, doctors=6, start=date(2022, 1, 3), weeks=190)
    busiest = [d for d, _ in Counter(v["doctor"] for v in scenario["visits"]).most_common(5)]
    visits = [
        v for d in busiest for v in [v for v in scenario["visits"] if v["doctor"] == d][:1000]
    ]
    work.mkdir()
    prod = common.prepare_production(work, scenario | {"visits": []}, busiest)
    server = prod.serve()
    points = []
    try:
        sessions = {d: common.login(server.url, d) for d in busiest}
        for size in CHART_BATCHES:
            bodies = common.batches_by_doctor(renamed(visits, f"b{size}"), size)
            secs, answers = push_all(server.url, "/api/v1/sync/push", sessions, bodies, clients)
            if answers["accepted"] != len(visits):
                raise SystemExit(f"error: batches of {size} answered {dict(answers)}")
            points.append((size, len(visits) / secs))
    finally:
        server.stop()
    return points


def production_run(work: Path, scenario: dict, pushing: list[str],
                   bodies: dict[str, list[bytes]], clients: int, evaluation: str,
                   database_url: str | None = None) -> dict:  # fmt: skip
    """Prepare a database of its own (a SQLite file in `work`, or the PostgreSQL schema of
    `database_url`), serve it with ZHUXUN_EVALUATION=`evaluation` (and a `zhuxun worker`
    beside it in worker mode), push every body; what was measured."""
    t0 = time.perf_counter()
    prod = common.prepare_production(work, scenario, pushing, database_url=database_url,
                                     env={"ZHUXUN_EVALUATION": evaluation})  # fmt: skip
    setup_s = time.perf_counter() - t0
    server = prod.serve()
    worker = prod.worker() if evaluation == "worker" else None
    try:
        sessions = {d: common.login(server.url, d) for d in pushing}
        started = time.perf_counter()
        seconds, answers = push_all(server.url, "/api/v1/sync/push", sessions, bodies, clients)
        rss = server.peak_rss_mib()
        drained_s = seconds
        if worker is not None:
            while common.scalar(prod.database_url, "SELECT count(*) FROM evaluation_queue"):
                time.sleep(0.05)
            drained_s = time.perf_counter() - started
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    return {
        "setup_s": setup_s, "seconds": seconds, "answers": answers, "rss": rss,
        "drained_s": drained_s,
        "stored": common.scalar(prod.database_url, "SELECT count(*) FROM visits"),
        "flag_changes": common.scalar(
            prod.database_url, "SELECT count(*) FROM flag_history WHERE cause = 'push'"),
        "open_flags": common.scalar(
            prod.database_url, "SELECT count(*) FROM flags WHERE state = 'open'"),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="5,000 visits (CI smoke)")
    parser.add_argument("--visits", type=int, help="visits to push (default 100,000; short 5,000)")
    parser.add_argument("--doctors", type=int, help="doctors (default 800; short 20)")
    parser.add_argument("--batch", type=int, default=common.CLIENT_BATCH,
                        help=f"changes a push at most (default {common.CLIENT_BATCH:,}, as the "
                        "offline client)")  # fmt: skip
    parser.add_argument("--clients", type=int, default=4, help="doctors pushing at once")
    parser.add_argument("--chart", action="store_true",
                        help="also the batch sizes of the chart → docs/bench-push-batch.svg")  # fmt: skip
    parser.add_argument("--no-save", action="store_true", help="print only, do not append")
    args = parser.parse_args()
    n = args.visits or (5_000 if args.short else 100_000)
    doctors = args.doctors or (20 if args.short else 800)
    mode = "short" if args.short else "full"
    if args.visits or args.doctors:
        mode = f"{n} visits, {doctors} doctors"

    scenario = common.county(n, doctors=doctors)
    visits = scenario["visits"]
    pushing = sorted({v["doctor"] for v in visits})
    bodies = common.batches_by_doctor(visits, args.batch)
    wire = sum(len(b) for own in bodies.values() for b in own)
    with common.workdir("bench-push") as work:
        runs = {}
        for mode_name in ("request", "worker"):
            (work / mode_name).mkdir()
            runs[mode_name] = production_run(work / mode_name, scenario, pushing, bodies,
                                             args.clients, mode_name)  # fmt: skip
        setup_s = runs["request"]["setup_s"]
        chart = batch_chart(work / "chart", args.clients) if args.chart else []

        bare = common.serve_bare(work)
        try:
            bare_sessions = {d: requests.Session() for d in pushing}
            bare_s, bare_ok = push_all(bare.url, "/push", bare_sessions, bodies, args.clients)
        finally:
            bare.stop()

        raw_s = raw_sqlite(work / "raw.sqlite3", visits)

    prod_s, prod_ok, rss = (
        runs["request"]["seconds"],
        runs["request"]["answers"],
        runs["request"]["rss"],
    )
    worker_s, worker_ok = runs["worker"]["seconds"], runs["worker"]["answers"]
    stored = min(run["stored"] for run in runs.values())
    flag_changes = runs["request"]["flag_changes"]
    open_flags = {name: run["open_flags"] for name, run in runs.items()}
    if worker_ok["accepted"] != n or open_flags["worker"] != open_flags["request"]:
        print(f"error: worker mode answered {dict(worker_ok)}; open flags {open_flags}")
        return 1
    if prod_ok["accepted"] != n or bare_ok["accepted"] != n or stored < n:
        print(f"error: production answered {dict(prod_ok)}, bare {dict(bare_ok)}, stored "
              f"{stored}; wanted {n} accepted")  # fmt: skip
        return 1
    rate = {"production": n / prod_s, "worker": n / worker_s, "bare": n / bare_s,
            "raw": n / raw_s}  # fmt: skip
    drained_s = runs["worker"]["drained_s"]
    rows = [
        ["production `zhuxun serve`, flags judged in the requests", f"{prod_s:.2f}",
         f"{rate['production']:,.0f}", f"{rate['production'] / rate['production']:.2f}"],
        ["production `zhuxun serve` + `zhuxun worker` (accepted)", f"{worker_s:.2f}",
         f"{rate['worker']:,.0f}", f"{rate['worker'] / rate['production']:.2f}"],
        ["… until the worker has judged every flag", f"{drained_s:.2f}",
         f"{n / drained_s:,.0f}", f"{n / drained_s / rate['production']:.2f}"],
        ["bare Flask + marshmallow (floor)", f"{bare_s:.2f}", f"{rate['bare']:,.0f}",
         f"{rate['bare'] / rate['production']:.2f}"],
        ["raw sqlite3 executemany (limit)", f"{raw_s:.3f}", f"{rate['raw']:,.0f}",
         f"{rate['raw'] / rate['production']:.1f}"],
    ]  # fmt: skip
    best = max(rate["production"], rate["worker"])
    vs_bare, vs_raw = best / rate["bare"], best / rate["raw"]
    body = [
        f"{n:,} visits of {len(pushing)} doctors (demo county, seed {common.SEED}), gzip batches "
        f"of {args.batch} ({wire / n:.0f} bytes a visit on the wire), {args.clients} doctors "
        f"pushing at once, {common.WORKERS} workers x {common.THREADS} threads. Setup "
        f"(init-db, import, {len(pushing)} doctor users) {setup_s:.1f} s a run, not timed.",
        "",
        common.table(["ingest", "seconds", "visits/s", "÷ request mode"], rows),
        "",
        f"- production ≥ 0.8x bare: request mode {rate['production'] / rate['bare']:.2f}x, "
        f"worker mode {rate['worker'] / rate['bare']:.2f}x — {common.goal(vs_bare >= 0.8)}",
        f"- production ≥ 5% of raw sqlite: request mode {rate['production'] / rate['raw']:.1%}, "
        f"worker mode {rate['worker'] / rate['raw']:.1%} — {common.goal(vs_raw >= 0.05)}",
        f"- peak RSS of a production worker (VmHWM): {rss:.0f} MiB (report only)",
        f"- flag changes recorded by the pushes' re-evaluation: {flag_changes} (request mode), "
        f"{runs['worker']['flag_changes']} (worker mode); open flags after: "
        f"{open_flags['request']} in both",
    ]
    if chart:
        svg = common.ROOT / "docs" / "bench-push-batch.svg"
        common.svg_bars(svg, "push ingest, visits/s (production server)", "changes a batch",
                        [f"{size:,}" for size, _ in chart],
                        {"visits/s": [rate for _, rate in chart]})  # fmt: skip
        body += ["", common.table(["batch size", "visits/s"],
                                  [[f"{s:,}", f"{r:,.0f}"] for s, r in chart]),  # fmt: skip
                 "", "(5 doctors x 1,000 visits, pushed again under new ids for each size, "
                 f"{args.clients} at once, on a server of their own; chart: "
                 f"{svg.relative_to(common.ROOT)})"]  # fmt: skip
    common.report("Push ingest", mode, "\n".join(body), save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
