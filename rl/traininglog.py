"""The training log of any transformers/trl trainer: every logged record appended to ``metrics.jsonl``, and a PNG of
the curves (reward mean ± std, loss, KL: whichever were logged) drawn from it when training ends."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

METRICS_FILE = "metrics.jsonl"
# What plot_curves draws, one panel each, when the records carry them: (title, series key, band key or None).
PANELS = (("reward (mean ± std)", "reward", "reward_std"), ("loss", "loss", None), ("eval loss", "eval_loss", None),
          ("KL to the reference", "kl", None))


class TrainingLog(TrainerCallback):
    """Appends each record the trainer logs (with its global ``step``, ``seconds`` since training began and the
    process's ``peak_rss_gb``) to ``<out_dir>/metrics.jsonl`` and draws ``<out_dir>/<plot_name>`` at train end. A new
    training run starts a new file: a plot of two runs' records in one would draw nonsense."""

    def __init__(self, out_dir: str | Path, plot_name: str = "curves.png"):
        self.out_dir = Path(out_dir)
        self.metrics = self.out_dir / METRICS_FILE
        self.png = self.out_dir / plot_name
        self.started = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.metrics.write_text("")
        self.started = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "seconds": round(time.monotonic() - self.started, 2),
                  "peak_rss_gb": peak_rss_gb(), **logs}
        with self.metrics.open("a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.metrics.is_file():
            plot_curves(self.metrics, self.png)


def peak_rss_gb() -> float:
    """The most resident memory this process has held so far, in GiB (so a log shows where memory grew)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 3)  # bytes on macOS, KiB on Linux


def read_metrics(metrics_jsonl: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(metrics_jsonl).read_text().splitlines() if line.strip()]


def plot_curves(metrics_jsonl: str | Path, png: str | Path) -> Path:
    """Draw one panel per logged curve of PANELS against the step into ``png``; a log with none of them gives a PNG
    that says so (a run that logged nothing still leaves a readable picture, not a missing file)."""
    from matplotlib.figure import Figure  # the object API renders with Agg and leaves pyplot's global state alone
    from matplotlib.ticker import MaxNLocator

    records = read_metrics(metrics_jsonl)
    panels = []
    for title, key, band in PANELS:
        points = [(r["step"], r[key], r.get(band) if band else None) for r in records
                  if isinstance(r.get(key), (int, float))]
        if points:
            panels.append((title, points))
    fig = Figure(figsize=(7, 2.6 * max(1, len(panels))), layout="constrained")
    if not panels:
        fig.text(0.5, 0.5, "no reward, loss or KL was logged", ha="center", va="center")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0] if panels else []
    for ax, (title, points) in zip(axes, panels):
        steps = [p[0] for p in points]
        values = [p[1] for p in points]
        ax.plot(steps, values, marker="o", markersize=3)
        spreads = [p[2] for p in points]
        if all(isinstance(s, (int, float)) for s in spreads):
            ax.fill_between(steps, [v - s for v, s in zip(values, spreads)],
                            [v + s for v, s in zip(values, spreads)], alpha=0.25)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    if panels:
        axes[-1].set_xlabel("step")
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    return png
