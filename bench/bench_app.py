"""The doctor's app over a simulated 2G link (issue 12): its first load, a later open with
no network, and a week's sync from the app.

    python bench/bench_app.py [--kbit-s K] [--rtt-ms R] [--no-save]

Debian's Chromium (Playwright, headless, a 390 px phone) opens /app/ through
bench/slow_link.py — 50 kbit/s and 300 ms RTT, one link shared by all the browser's
connections, as one phone radio — in front of `zhuxun serve` (gunicorn, as in production)
over a small demo county's places, doctors and assignments. Measured:

1. first load: seconds to the sign-in screen and until the service worker holds the whole
   app (offline-ready); bytes on the wire, and gzip bodies per part: the app shell (its own
   files), SQLite's JavaScript glue, SQLite's WebAssembly;
2. sign-in and the first sync (the county's places, the doctor's assignments, the plans);
3. a later open with the network off: bytes through the link (goal 0) and seconds;
4. a week's sync: ten half-day visits logged offline during a week (Monday to Friday), then
   the network returns and the app syncs by itself: seconds and bytes (goal ≤ 2 s).

Goal (issue 12): the app shell ≤ 150 KB gzip.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import common
from slow_link import SlowLink

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHELL_GOAL = 150 * 1024
WEEK_SYNC_GOAL_S = 2.0
TIMEOUT_MS = 600_000


def serve(workdir: Path) -> tuple[Any, str, str, Any]:
    """`zhuxun serve` (gunicorn, as in production) over the demo county's places, doctors
    and assignments (its weeks end last Sunday), with one patrolling doctor's login."""
    from demo_county import generate_county
    from server.flags import today_in_china

    today = today_in_china()
    monday = today - timedelta(days=today.weekday())
    scenario = generate_county(seed=7, townships=2, villages=10, doctors=10, weeks=8,
                               start=monday - timedelta(weeks=8))  # fmt: skip
    patrol = next(a for a in scenario["assignments"] if a["kind"] == "patrol" and not a["end"])
    prod = common.prepare_production(workdir, scenario, [patrol["doctor"]])
    server = prod.serve()
    return server, server.url, common.username(patrol["doctor"]), patrol


class Wire:
    """Bytes through the link between two marks, and the page's responses by part."""

    def __init__(self, link: SlowLink) -> None:
        self.link = link
        self.bodies: dict[str, int] = {"shell": 0, "sqlite glue": 0, "sqlite wasm": 0}
        self.requests = 0
        self.log: list[str] = []

    def mark(self) -> tuple[int, int]:
        return self.link.totals()

    def since(self, mark: tuple[int, int]) -> tuple[int, int]:
        up, down = self.link.totals()
        return up - mark[0], down - mark[1]

    def on_response(self, request: Any) -> None:
        self.requests += 1
        sizes = request.sizes()
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        timing = request.timing
        self.log.append(
            f"{time.monotonic():.2f} {request.method} /{path.split('?')[0]} "
            f"{timing['responseEnd'] - timing['requestStart']:.0f} ms "
            f"up {sizes['requestBodySize']} down {sizes['responseBodySize']}"
        )
        if not path.startswith("app"):
            return
        part = ("sqlite wasm" if path.endswith(".wasm")
                else "sqlite glue" if path.endswith("sqlite3.mjs") else "shell")  # fmt: skip
        self.bodies[part] += int(sizes.get("responseBodySize") or 0)


def week_of_visits(doctor: str, assignment: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """Ten half-day patrol sessions of last week (Monday to Friday, am and pm)."""
    from server.flags import today_in_china

    monday = today_in_china() - timedelta(days=today_in_china().weekday() + 7)
    visits = []
    for offset in range(5):
        day = (monday + timedelta(days=offset)).isoformat()
        for start, end, place in (("08:00", "12:10", 0), ("14:00", "18:05", -1)):
            visits.append({
                "doctor": doctor, "assignment": assignment["id"], "kind": "patrol",
                "place": assignment["places"][place], "check_in": f"{day}T{start}:00+08:00",
                "check_out": f"{day}T{end}:00+08:00", "patients": 6 + offset, "device_id": device,
                "form_version": 1, "recorded_at": f"{day}T{end}:30+08:00",
                "lat": 22.75, "lon": 108.62, "accuracy_m": 15.0,
            })  # fmt: skip
    return visits


def kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kbit-s", type=float, default=50)
    parser.add_argument("--rtt-ms", type=float, default=300)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="zhuxun-app-bench-") as tmp:
        server, url, login, patrol = serve(Path(tmp))
        with SlowLink(url, kbit_s=args.kbit_s, rtt_ms=args.rtt_ms, shared=True) as link, \
                sync_playwright() as playwright:  # fmt: skip
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)  # fmt: skip
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                locale="zh-CN", timezone_id="Asia/Shanghai", permissions=["geolocation"],
                geolocation={"latitude": 22.75, "longitude": 108.62},
            )  # fmt: skip
            context.set_default_timeout(TIMEOUT_MS)
            wire = Wire(link)
            context.on("requestfinished", wire.on_response)
            rows: list[list[Any]] = []

            # 1. First load.
            mark, start = wire.mark(), time.monotonic()
            page = context.new_page()
            page.goto(f"{link.url}/app/", wait_until="commit")
            page.wait_for_selector("body[data-ready=true]")
            ready_s = time.monotonic() - start
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            page.evaluate(
                "async () => { const r = await navigator.serviceWorker.ready;"
                " const keys = await caches.keys(); return keys.length; }"
            )
            offline_ready_s = time.monotonic() - start
            up, down = wire.since(mark)
            bodies = dict(wire.bodies)
            rows.append(["first load: sign-in screen shown", f"{ready_s:.1f}", "", "", ""])
            rows.append(["first load: whole app cached (offline-ready)", f"{offline_ready_s:.1f}",
                         kb(up), kb(down), wire.requests])  # fmt: skip

            # 2. Sign in and the first sync.
            mark, start, before = wire.mark(), time.monotonic(), wire.requests
            page.fill("input[name=username]", login)
            page.fill("input[name=password]", common.PASSWORD)
            page.click("#login button[type=submit]")
            page.wait_for_selector("body:not([data-synced-at=''])[data-synced-at]")
            page.wait_for_selector("body[data-phase=idle][data-pending='0']")
            up, down = wire.since(mark)
            rows.append(["sign-in and first sync", f"{time.monotonic() - start:.1f}", kb(up),
                         kb(down), wire.requests - before])  # fmt: skip
            doctor = page.evaluate("window.zhuxun.store.session().then((s) => s.user.doctor)")
            device = page.evaluate("window.zhuxun.store.deviceId()")

            # 3. A later open with no network.
            context.set_offline(True)
            page.close()
            mark, start, before = wire.mark(), time.monotonic(), wire.requests
            page = context.new_page()
            page.goto(f"{link.url}/app/")
            page.wait_for_selector("#check-in-card")
            up, down = wire.since(mark)
            offline_bytes = up + down
            rows.append(["later open, network off", f"{time.monotonic() - start:.2f}", kb(up),
                         kb(down), wire.requests - before])  # fmt: skip

            # 4. A week's visits logged offline, then the network returns.
            for visit in week_of_visits(doctor, patrol, device):
                page.evaluate("(v) => window.zhuxun.store.save('visits', crypto.randomUUID()"
                              ".replaceAll('-', ''), v)", visit)  # fmt: skip
            page.evaluate("window.zhuxun.render()")
            page.wait_for_selector("body[data-pending='10']")
            synced_before = page.evaluate("window.zhuxun.syncer.state.lastSyncAt || 0")
            mark, start, before = wire.mark(), time.monotonic(), wire.requests
            connections = link.connections
            context.set_offline(False)  # the `online` event starts the sync
            page.wait_for_function(
                "(t) => (window.zhuxun.syncer.state.lastSyncAt || 0) > t",
                arg=synced_before,
                polling=20,
            )
            week_s = time.monotonic() - start
            page.wait_for_selector("body[data-phase=idle][data-pending='0']")
            shown_s = time.monotonic() - start
            up, down = wire.since(mark)
            week_log = wire.log[before - wire.requests :] if wire.requests > before else []
            print(f"{start:.2f} network back", *week_log, sep="\n")  # where the time goes
            print(f"new connections: {link.connections - connections}")
            assert up > 10 * 100, "the ten visits went up"
            rows.append(["a week's sync (10 visits), network back: synced", f"{week_s:.2f}",
                         kb(up), kb(down), wire.requests - before])  # fmt: skip
            rows.append(["… and the home screen redrawn with the result", f"{shown_s:.2f}",
                         "", "", ""])  # fmt: skip
            context.close()
            browser.close()
        server.stop()

    shell = bodies["shell"]
    parts = common.table(
        ["part of the first load", "gzip bytes", "seconds at the link's rate"],
        [[name, kb(size), f"{size * 8 / (args.kbit_s * 1000):.1f}"] for name, size in bodies.items()],
    )  # fmt: skip
    body = "\n\n".join([
        f"The app in Chromium (390 px) through a {args.kbit_s:g} kbit/s, {args.rtt_ms:g} ms RTT "
        "link shared by all its connections; `zhuxun serve` (gunicorn) over the demo "
        "county's places, doctors and assignments (seed 7, 10 doctors).",
        common.table(["step", "seconds", "up", "down", "requests"], rows),
        parts,
        f"- app shell ≤ 150 KB gzip: {kb(shell)} — **{'met' if shell <= SHELL_GOAL else 'not met'}**"
        f" (with SQLite's JavaScript glue: {kb(shell + bodies['sqlite glue'])})",
        f"- later open with no network: {offline_bytes} bytes through the link — "
        f"**{'met' if offline_bytes == 0 else 'not met'}**",
        f"- a week's sync ≤ {WEEK_SYNC_GOAL_S:g} s: {week_s:.2f} s — "
        f"**{'met' if week_s <= WEEK_SYNC_GOAL_S else 'not met'}**",
    ])  # fmt: skip
    common.report("The doctor's app on a 2G link", "bench_app", body, save=not args.no_save)
    print(json.dumps({"shell_gzip": shell, "week_sync_s": week_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
