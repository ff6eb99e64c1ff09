"""A long, random schemathesis run over every operation, with its figures at the end.

    .venv/bin/python tests/fuzz/run_long.py                      # 500 examples per operation
    .venv/bin/python tests/fuzz/run_long.py --examples 2000 --db sqlite
    .venv/bin/python tests/fuzz/run_long.py --seed 1234 -- -x    # replay a seed; pytest args

It runs tests/fuzz/test_schemathesis.py with SEGMENTD_FUZZ_EXAMPLES (which also turns off
the suite's derandomization) and a hypothesis seed it prints, so a failing run can be replayed.
The databases must be up (scripts/test starts them).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/fuzz/test_schemathesis.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="per operation (default 500)")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite,postgresql (default both)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default random)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as stats_file:
        stats_path = stats_file.name
    env = {**os.environ, "SEGMENTD_FUZZ_EXAMPLES": str(args.examples),
           "SEGMENTD_FUZZ_STATS": stats_path, "SEGMENTD_FUZZ_DATABASES": ",".join(dbs)}
    selection = "operation_never"  # each generated request goes to every database in dbs
    cmd = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider", "-k", selection,
           f"--hypothesis-seed={seed}", *args.pytest_args]
    print(f"$ SEGMENTD_FUZZ_EXAMPLES={args.examples} SEGMENTD_FUZZ_DATABASES={','.join(dbs)} "
          f"{' '.join(cmd[2:])}", flush=True)
    started = time.monotonic()
    code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    elapsed = time.monotonic() - started

    runs = [json.loads(line) for line in Path(stats_path).read_text().splitlines() if line]
    os.unlink(stats_path)
    statuses: collections.Counter[int] = collections.Counter()
    for run in runs:
        statuses.update({int(k) if k.isdigit() else k: v for k, v in run["statuses"].items()})
    operations = {run["test"].split("[", 1)[1].split("]", 1)[0] for run in runs}
    unsendable = statuses.pop("unsendable", 0)  # URLs httpx refuses to build
    server_errors = sum(v for k, v in statuses.items() if k >= 500)
    print()
    print(f"seed                 {seed}")
    print(f"databases            {', '.join(dbs)}")
    print(f"operations           {len(operations)} (each request sent to {len(dbs)} databases)")
    print(f"max examples / op    {args.examples}")
    print(f"requests sent        {sum(statuses.values())}")
    print(f"statuses             {dict(sorted(statuses.items()))}")
    print(f"unsendable (URL)     {unsendable}")
    print(f"5xx responses        {server_errors}")
    print(f"pytest exit code     {code} ({'no failures' if code == 0 else 'FAILURES, see above'})")
    print(f"duration             {elapsed:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
