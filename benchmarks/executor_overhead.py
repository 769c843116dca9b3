"""Executor overhead: seconds per run through LocalExecutor (with and without bubblewrap) against running the same
script directly with subprocess, measured in one run. Prints a table and the ratios.

Usage: python benchmarks/executor_overhead.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from core.executor import ExecutorOptions, RunRequest
from core.local_executor import LocalExecutor
from core.sandbox import bwrap_works

SCRIPTS = {
    "empty": "print('Final Validation Performance: 1.0')\n",
    "pandas+sklearn": (
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "df = pd.read_csv('input/train.csv')\nm = LogisticRegression().fit(df[['x']], df['y'])\n"
        "pd.read_csv('input/sample_submission.csv').to_csv('submission.csv', index=False)\n"
        "print('Final Validation Performance:', m.score(df[['x']], df['y']))\n"),
}


def direct(code: str, folder: Path, runs: int) -> list[float]:
    (folder / "solution.py").write_text(code)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "solution.py"], cwd=folder, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def via_executor(code: str, input_dir: Path, out: Path, isolation: str, runs: int) -> list[float]:
    ex = LocalExecutor(ExecutorOptions(workers=1, cache=False, isolation=isolation), out_dir=out)
    times = []
    for i in range(runs):
        t = time.perf_counter()
        result = ex.run(RunRequest(code=code + f"# run {i}\n", input_dir=input_dir, timeout=60,
                                   check_submission=False))
        assert result.ok, result.error_tail
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    modes = ["none"] + (["bwrap"] if bwrap_works() else [])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inp = root / "input"
        inp.mkdir()
        pd.DataFrame({"x": range(200), "y": [i % 2 for i in range(200)]}).to_csv(inp / "train.csv", index=False)
        pd.DataFrame({"id": [1], "y": [0]}).to_csv(inp / "sample_submission.csv", index=False)
        print("| script | direct s/run | " + " | ".join(f"executor ({m}) s/run | overhead ({m})" for m in modes) + " |")
        print("|---|---|" + "---|---|" * len(modes))
        for name, code in SCRIPTS.items():
            work = root / f"direct-{name}"
            work.mkdir()
            (work / "input").symlink_to(inp)
            base = statistics.median(direct(code, work, args.runs))
            cells = [f"{base:.3f}"]
            for mode in modes:
                t = statistics.median(via_executor(code, inp, root / f"out-{mode}-{name}", mode, args.runs))
                cells += [f"{t:.3f}", f"+{(t - base) * 1000:.0f} ms ({t / base:.2f}×)"]
            print(f"| {name} | " + " | ".join(cells) + " |")
        ex = LocalExecutor(ExecutorOptions(workers=1, cache=True), out_dir=root / "cached")
        ex.run(RunRequest(code=SCRIPTS["empty"], input_dir=inp, timeout=60))
        t = time.perf_counter()
        hit = ex.run(RunRequest(code=SCRIPTS["empty"], input_dir=inp, timeout=60))
        print(f"\ncache hit: {(time.perf_counter() - t) * 1000:.1f} ms (cached={hit.cached})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
