"""Push ingest through the production server, against its floor and its limit, side by side.

    python bench/bench_push.py [--short] [--visits N] [--doctors D] [--no-save]

The same seeded demo-county visits, as the same gzip push bodies of 500 changes (each
doctor's own, pushed in that doctor's logged-in session), go to:

1. `zhuxun serve` (gunicorn, 2 workers x 4 threads) on SQLite prepared with `zhuxun init-db`,
   `zhuxun import` (the county without visits) and `zhuxun create-user` per doctor: the whole
   push path — auth, validation, references, scope, merge, change-id memory, typed tables,
   flag re-evaluation of the touched doctor-weeks;
2. bench/bare_app.py under the same gunicorn settings: validate and upsert only (the floor);
3. `sqlite3` executemany of the same rows in one transaction (the limit).

Also the peak resident memory (VmHWM) of a production worker, and with --chart the production
throughput at batch sizes 50/200/500 drawn to docs/bench-push-batch.svg. Goals (issue 7):
production >= 0.8x the bare endpoint and >= 5% of raw sqlite.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common
import requests
from bare_app import SCHEMA, UPSERT


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


def svg_chart(points: list[tuple[int, float]], path: Path) -> None:
    """Push throughput against batch size, as bars; hand-written SVG, no plotting library."""
    width, height, left, bottom = 420, 260, 60, 40
    top = max(rate for _, rate in points) * 1.15 or 1
    bar = (width - left - 20) / len(points)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="{width / 2}" y="16" text-anchor="middle">push ingest, visits/s '
             "(production server)</text>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
             'stroke="black"/>']  # fmt: skip
    for i, (size, rate) in enumerate(points):
        h = (height - bottom - 30) * rate / top
        x = left + i * bar + bar * 0.2
        y = height - bottom - h
        parts += [
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{bar * 0.6:.0f}" height="{h:.0f}" fill="#4a7ab5"/>',
            f'<text x="{x + bar * 0.3:.0f}" y="{y - 4:.0f}" text-anchor="middle">{rate:.0f}</text>',
            f'<text x="{x + bar * 0.3:.0f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{size}</text>",
        ]
    parts.append(
        f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">changes a batch</text>'
    )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="5,000 visits (CI smoke)")
    parser.add_argument("--visits", type=int, help="visits to push (default 100,000; short 5,000)")
    parser.add_argument("--doctors", type=int, help="doctors (default 800; short 20)")
    parser.add_argument("--batch", type=int, default=common.CLIENT_BATCH,
                        help=f"changes a push at most (default {common.CLIENT_BATCH:,}, as the "
                        "offline client)")  # fmt: skip
    parser.add_argument("--clients", type=int, default=4, help="doctors pushing at once")
    parser.add_argument("--chart", action="store_true", help="also batch sizes 50/200/500 → SVG")
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
        t0 = time.perf_counter()
        prod = common.prepare_production(work, scenario, pushing)
        setup_s = time.perf_counter() - t0

        server = prod.serve()
        try:
            sessions = {d: common.login(server.url, d) for d in pushing}
            prod_s, prod_ok = push_all(server.url, "/api/v1/sync/push", sessions, bodies,
                                       args.clients)  # fmt: skip
            rss = server.peak_rss_mib()
            chart: list[tuple[int, float]] = []
            if args.chart:
                # Access tokens last 15 minutes; the full run outlasts them: log in again.
                sessions = {d: common.login(server.url, d) for d in pushing}
                subset = visits[: min(n, 5_000)]
                for size in (50, 200, 500):
                    more = common.batches_by_doctor(renamed(subset, f"b{size}"), size)
                    secs, _ = push_all(server.url, "/api/v1/sync/push", sessions, more,
                                       args.clients)  # fmt: skip
                    chart.append((size, len(subset) / secs))
        finally:
            server.stop()
        stored = common.scalar(prod.database_url, "SELECT count(*) FROM visits")
        flag_changes = common.scalar(
            prod.database_url, "SELECT count(*) FROM flag_history WHERE cause = 'push'"
        )

        bare = common.serve_bare(work)
        try:
            bare_sessions = {d: requests.Session() for d in pushing}
            bare_s, bare_ok = push_all(bare.url, "/push", bare_sessions, bodies, args.clients)
        finally:
            bare.stop()

        raw_s = raw_sqlite(work / "raw.sqlite3", visits)

    if prod_ok["accepted"] != n or bare_ok["accepted"] != n or stored < n:
        print(f"error: production answered {dict(prod_ok)}, bare {dict(bare_ok)}, stored "
              f"{stored}; wanted {n} accepted")  # fmt: skip
        return 1
    rate = {"production": n / prod_s, "bare": n / bare_s, "raw": n / raw_s}
    vs_bare, vs_raw = rate["production"] / rate["bare"], rate["production"] / rate["raw"]
    rows = [
        ["production `zhuxun serve`", f"{prod_s:.2f}", f"{rate['production']:,.0f}", "1.00"],
        ["bare Flask + marshmallow (floor)", f"{bare_s:.2f}", f"{rate['bare']:,.0f}",
         f"{rate['production'] / rate['bare']:.2f}"],
        ["raw sqlite3 executemany (limit)", f"{raw_s:.3f}", f"{rate['raw']:,.0f}",
         f"{rate['production'] / rate['raw']:.3f}"],
    ]  # fmt: skip
    body = [
        f"{n:,} visits of {len(pushing)} doctors (demo county, seed {common.SEED}), gzip batches "
        f"of {args.batch} ({wire / n:.0f} bytes a visit on the wire), {args.clients} doctors "
        f"pushing at once, {common.WORKERS} workers x {common.THREADS} threads. Setup "
        f"(init-db, import, {len(pushing)} doctor users) {setup_s:.1f} s, not timed.",
        "",
        common.table(["ingest", "seconds", "visits/s", "production ÷ this"], rows),
        "",
        f"- production ≥ 0.8x bare: {vs_bare:.2f}x — {common.goal(vs_bare >= 0.8)}",
        f"- production ≥ 5% of raw sqlite: {vs_raw:.1%} — {common.goal(vs_raw >= 0.05)}",
        f"- peak RSS of a production worker (VmHWM): {rss:.0f} MiB (report only)",
        f"- flag changes recorded by the pushes' re-evaluation: {flag_changes}",
    ]
    if chart:
        svg = common.ROOT / "docs" / "bench-push-batch.svg"
        svg_chart(chart, svg)
        body += ["", common.table(["batch size", "visits/s"],
                                  [[s, f"{r:,.0f}"] for s, r in chart]),  # fmt: skip
                 "", f"(same server after the main run, {len(subset):,} more visits each; "
                 f"chart: {svg.relative_to(common.ROOT)})"]  # fmt: skip
    common.report("Push ingest", mode, "\n".join(body), save=not args.no_save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
