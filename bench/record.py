"""Run a benchmark that only prints (bench/bench_rules.py) and append its output, with the
machine, to docs/benchmarks.md; the exit code is the benchmark's.

    python bench/record.py "Rules engine" short -- python bench/bench_rules.py --short
"""

from __future__ import annotations

import subprocess
import sys

import common


def main() -> int:
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    title, mode, command = sys.argv[1], sys.argv[2], sys.argv[4:]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        print(done.stdout)
        return done.returncode
    common.report(title, mode, "```\n" + done.stdout.rstrip() + "\n```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
