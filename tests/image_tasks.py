"""A small image competition in MLE-bench layout, written for tests: light and dark PNGs, a zipped test folder."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((6, 6, 3), shade, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def shades_competition(folder: Path, rows: int = 40) -> Path:
    """train.csv (id, label), train/<id>.png, test.zip holding test/<id>.png, sample_submission.csv naming the test
    ids, no test.csv, private/answers.csv; dark images are class 0, light ones class 1. Returns the folder."""
    (folder / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=rows)
    for k, label in enumerate(labels):
        (folder / "train" / f"img{k:03d}.png").write_bytes(png(int(200 * label + rng.integers(0, 50))))
    pd.DataFrame({"id": [f"img{k:03d}" for k in range(rows)], "label": labels}).to_csv(folder / "train.csv",
                                                                                     index=False)
    with zipfile.ZipFile(folder / "test.zip", "w") as bundle:
        for k in range(10):
            bundle.writestr(f"test/t{k:03d}.png", png(30 if k % 2 else 230))
    pd.DataFrame({"id": [f"t{k:03d}" for k in range(10)], "label": 0}).to_csv(folder / "sample_submission.csv",
                                                                            index=False)
    (folder / "description.md").write_text("Tell light images (1) from dark ones (0).")
    (folder / "private").mkdir()
    pd.DataFrame({"id": [f"t{k:03d}" for k in range(10)], "label": [0 if k % 2 else 1 for k in range(10)]}) \
        .to_csv(folder / "private" / "answers.csv", index=False)
    (folder / "task.yaml").write_text("data: {dir: .}\nmetric: accuracy\nvalidation: {folds: 1}\n")
    return folder
