"""Executor throughput: scripts per minute against the number of workers for the local and the ray executor on this
machine, and each executor's overhead per script (wall time per script and worker, less the script's own time run
directly with subprocess). The ray runs use a throwaway cluster started here: one one-CPU node per worker.

Usage: python benchmarks/executor_throughput.py [--scripts 16] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway cluster the ray executor's tests use

import pandas as pd  # noqa: E402

from core.executor import ExecutorOptions, RunRequest  # noqa: E402
from core.local_executor import LocalExecutor  # noqa: E402
from executor_overhead import direct  # noqa: E402  (this folder is on sys.path when run as a script)

# Both write valid outputs, so the executor does all its work (outputs checked, files shipped back).
SCRIPTS = {
    "trivial": (
        "import csv\nrows = list(csv.reader(open('input/sample_submission.csv')))\n"
        "csv.writer(open('submission.csv', 'w', newline='')).writerows(rows)\n"
        "csv.writer(open('val_predictions.csv', 'w', newline='')).writerows(rows)\n"
        "print('Final Validation Performance: 1.0')\n"),
    "pandas+sklearn": (
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "df = pd.read_csv('input/train.csv')\nm = LogisticRegression().fit(df[['x']], df['y'])\n"
        "sample = pd.read_csv('input/sample_submission.csv')\n"
        "sample.to_csv('submission.csv', index=False)\nsample.to_csv('val_predictions.csv', index=False)\n"
        "print('Final Validation Performance:', m.score(df[['x']], df['y']))\n"),
}


def own_seconds(code: str, inputs: Path, folder: Path, runs: int) -> float:
    """The script's median time run directly, with no executor around it."""
    folder.mkdir()
    (folder / "input").symlink_to(inputs)
    return statistics.median(direct(code, folder, runs))


def wall_seconds(executor, code: str, inputs: Path, scripts: int, tag: str) -> float:
    """Seconds for ``scripts`` distinct copies of the script through the executor (after two untimed ones that
    start its workers)."""
    def batch(n: int, label: str) -> list[RunRequest]:
        return [RunRequest(code=f"{code}# {tag} {label} {i}\n", input_dir=inputs, timeout=120, id_column="id")
                for i in range(n)]
    executor.run_many(batch(2, "warm-up"))
    t = time.perf_counter()
    results = executor.run_many(batch(scripts, "timed"))
    wall = time.perf_counter() - t
    assert all(r.ok for r in results), [r.error_tail for r in results if not r.ok][:1]
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", type=int, default=16)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = root / "input"
        inputs.mkdir()
        pd.DataFrame({"x": range(200), "y": [i % 2 for i in range(200)]}).to_csv(inputs / "train.csv", index=False)
        pd.DataFrame({"id": range(50), "y": 0}).to_csv(inputs / "sample_submission.csv", index=False)
        own = {name: own_seconds(code, inputs, root / f"direct-{name}", 8) for name, code in SCRIPTS.items()}
        executors = {f"local w={w}": (w, lambda w=w: LocalExecutor(
            ExecutorOptions(workers=w, cache=False), out_dir=root / f"local-{w}")) for w in counts}
        cluster = _ray_cluster(max(counts))
        try:
            if cluster is not None:
                from core.ray_executor import make_ray_executor
                executors.update({f"ray w={w}": (w, lambda w=w: make_ray_executor(
                    {"address": cluster.address, "workers": w, "cache": False}, out_dir=root / f"ray-{w}"))
                    for w in counts})
            for label, (workers, make) in executors.items():
                executor = make()
                for name, code in SCRIPTS.items():
                    wall = wall_seconds(executor, code, inputs, args.scripts, label)
                    rows.append((name, label.split()[0], workers, wall, own[name]))
                    print(f"{name} / {label}: {wall:.1f} s", file=sys.stderr)
        finally:
            if cluster is not None:
                import ray
                ray.shutdown()
                cluster.stop()
    print(f"{args.scripts} scripts per cell on {os.cpu_count()} cores; overhead = wall × workers ÷ scripts − the "
          f"script's own time run directly")
    print("| script | own s | executor | workers | scripts/min | s/script | overhead s/script |")
    print("|---|---|---|---|---|---|---|")
    for name, kind, workers, wall, own_s in rows:
        per = wall / args.scripts
        print(f"| {name} | {own_s:.2f} | {kind} | {workers} | {60 / per:.0f} | {per:.2f} | "
              f"{per * workers - own_s:+.2f} |")
    return 0


def _ray_cluster(nodes: int):
    """A throwaway cluster of ``nodes`` one-CPU nodes, or None (with a note) when ray is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print("ray is not installed (pip install 'mlestar[ray]'): local executor only", file=sys.stderr)
        return None
    from ray_cluster import start_cluster
    return start_cluster(nodes=nodes, cpus=1)


if __name__ == "__main__":
    sys.exit(main())
