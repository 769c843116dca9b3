"""A task folder's image folders and archives: found, unpacked once, described for the policies, and mounted
read-only into every script's ./input/, with or without bubblewrap; the test rows may come from the sample alone."""

from __future__ import annotations

import io
import zipfile
from textwrap import dedent

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.assets import modality
from core.dataprep import prepare_data
from core.errors import TaskError
from core.executor import ExecutorOptions, RunRequest, Status
from core.local_executor import LocalExecutor
from core.policy import ColumnInfo, ImageInfo
from core.sandbox import bwrap_works
from core.task import load_task
from image_tasks import png, shades_competition


@pytest.fixture
def image_competition(tmp_path):
    return shades_competition(tmp_path / "shades")


def test_an_image_competition_without_test_csv_loads_with_its_image_folders(image_competition, registry):
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    assert task.test is None and task.target == "label" and task.id_column == "id"
    assert sorted(p.name for p in task.assets) == ["test.zip", "train"]  # never private/ nor the output folder
    data = prepare_data(task, maximize=True, proba=False)
    ctx = data.context
    assert ctx.modality == "image"
    assert ctx.images == ImageInfo(column="id", suffix=".png", train_folder="train", test_folder="test")
    described = {a.name: a for a in ctx.assets}
    assert described["train"].files == 40 and described["train"].types == {".png": 40}
    assert described["test"].archive == "test.zip" and described["test"].examples[0] == "test/t000.png"
    # the test rows are the sample's ids; every input folder links the images where a script expects them
    assert list(pd.read_csv(data.full_dir / "test.csv")["id"]) == [f"t{k:03d}" for k in range(10)]
    for folder in (data.search_dir, data.full_dir):
        assert (folder / "train" / "img000.png").read_bytes() == (image_competition / "train" / "img000.png").read_bytes()
        assert (folder / "test" / "t003.png").is_file() and (folder / "test.zip").is_file()
    assert {"train", "test", "test.zip"} <= set(ctx.files)
    # loading again, with out/ now inside the task folder, finds the same assets
    again = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    assert again.assets == task.assets


READ_IMAGES = """
    import os
    import numpy as np
    import pandas as pd
    from PIL import Image

    def shade(folder, name):
        return float(np.asarray(Image.open(os.path.join("input", folder, name + ".png"))).mean())

    test = pd.read_csv("input/test.csv")
    print("train shade", shade("train", "img000"), "test shades", [shade("test", i) for i in test["id"]])
    try:
        with open("input/train/img000.png", "wb") as handle:
            handle.write(b"overwritten")
        print("wrote into the input")
    except OSError as exc:
        print("read-only:", type(exc).__name__)
"""


@pytest.mark.parametrize("isolation", ["bwrap", "none"])
def test_a_script_reads_the_linked_images_and_cannot_change_the_tasks_copy(isolation, image_competition, registry,
                                                                         tmp_path):
    if isolation == "bwrap" and not bwrap_works():
        pytest.skip("bubblewrap cannot create namespaces here")
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    data = prepare_data(task, maximize=True, proba=False)
    original = (image_competition / "train" / "img000.png").read_bytes()
    executor = LocalExecutor(ExecutorOptions(workers=1, isolation=isolation, cache=False), out_dir=tmp_path / "runs")
    result = executor.run(RunRequest(code=dedent(READ_IMAGES), input_dir=data.full_dir, timeout=60, id_column="id"))
    assert result.status == Status.NO_SCORE, result.stderr_tail
    expected = float(np.asarray(Image.open(io.BytesIO(original))).mean())
    assert f"train shade {expected}" in result.stdout_tail
    assert "test shades [230.0, 30.0, 230.0" in result.stdout_tail
    assert (image_competition / "train" / "img000.png").read_bytes() == original
    if isolation == "bwrap":
        assert "read-only: OSError" in result.stdout_tail


def test_a_changed_image_is_new_data_for_the_run_cache(image_competition, registry, tmp_path):
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    request = RunRequest(code="print('hi')", input_dir=prepare_data(task, True, False).full_dir, timeout=60,
                         id_column="id")
    before = LocalExecutor(ExecutorOptions(workers=1), out_dir=tmp_path / "a").cache_key(request)
    (image_competition / "train" / "img005.png").write_bytes(png(99))
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    request = RunRequest(code="print('hi')", input_dir=prepare_data(task, True, False).full_dir, timeout=60,
                         id_column="id")
    assert LocalExecutor(ExecutorOptions(workers=1), out_dir=tmp_path / "b").cache_key(request) != before


def test_a_broken_archive_is_one_line_when_the_task_loads(image_competition, registry):
    (image_competition / "extra.zip").write_bytes(b"not a zip at all")
    with pytest.raises(TaskError) as caught:
        load_task(image_competition / "task.yaml", metrics=registry.metrics)
    assert "extra.zip is not a readable archive" in str(caught.value) and "\n" not in str(caught.value)


def test_an_archive_member_that_would_land_outside_its_folder_is_refused(image_competition, registry):
    with zipfile.ZipFile(image_competition / "evil.zip", "w") as bundle:
        bundle.writestr("../../escaped.txt", "x")
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    with pytest.raises(TaskError, match="would be unpacked outside its folder"):
        prepare_data(task, maximize=True, proba=False)
    assert not list(image_competition.parent.rglob("escaped.txt"))


def column(name: str, dtype: str) -> ColumnInfo:
    return ColumnInfo(name=name, dtype=dtype)


@pytest.mark.parametrize("columns, images, expected", [
    ([column("x", "numeric"), column("c", "categorical")], False, "tabular"),
    ([column("text", "text")], False, "text"),
    ([column("text", "text"), column("author_age", "numeric")], False, "text"),
    ([column("summary", "text"), column("module", "categorical"), column("n", "numeric")], False, "mixed"),
    ([], True, "image"),
    ([column("caption", "text")], True, "mixed"),
    ([column("x", "numeric"), column("y", "numeric")], True, "mixed"),
])
def test_the_modality_follows_the_kinds_of_features(columns, images, expected):
    found = ImageInfo(column="id", train_folder="train", test_folder="test") if images else None
    assert modality(columns, found) == expected


def test_a_declared_modality_wins_over_the_inferred_one(image_competition, registry):
    (image_competition / "task.yaml").write_text("data: {dir: ., modality: mixed}\nmetric: accuracy\n")
    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    assert prepare_data(task, maximize=True, proba=False).context.modality == "mixed"


def test_the_llm_prompts_list_the_folders_the_image_paths_and_the_devices(image_competition, registry):
    from plugins.llm.prompting import contract_text, task_text

    task = load_task(image_competition / "task.yaml", metrics=registry.metrics)
    ctx = prepare_data(task, maximize=True, proba=False).context
    text = task_text(ctx)
    assert "(classification, image data)" in text
    assert "Folder ./input/train/ (40 files: 40 .png), e.g. train/img000.png" in text
    assert "Folder ./input/test/ (10 files: 10 .png, unpacked from test.zip)" in text
    assert "Each row's image: ./input/train/<id>.png for train.csv and valid.csv rows, ./input/test/<id>.png" in text
    contract = contract_text(ctx, 60)
    assert "Read-only folders in ./input/: test/, train/" in contract and "CPU only (no GPU)" in contract
    assert "Pillow" in contract and "torch" in contract
    assert "one GPU is visible as cuda:0" in contract_text(ctx.model_copy(update={"gpus": 1}), 60)
