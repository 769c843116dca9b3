"""Image recipes: the preprocess block's image step (each row's image as pixel and histogram columns) and a small
torch CNN that a script defines itself, with their drafts, refinement options and the cards' example scripts.

The image step lives in preprocess, not load_data: load_data blocks are never ablated or refined
(``ablation.summary.NOT_REFINED``), and the image size, colours and histograms are knobs a refinement should turn.
It fits nothing, so placing it beside the fitted steps leaks nothing.
"""

from __future__ import annotations

import textwrap

from core.policy import TaskContext
from space.specs import ImageSpec, PreprocessSpec

# Classes a script defines itself (their source is rendered into the model block), and the library each needs.
CNN_CLASSIFIER = "script.ImageCNNClassifier"
CNN_REGRESSOR = "script.ImageCNNRegressor"
SCRIPTED = {CNN_CLASSIFIER: "torch", CNN_REGRESSOR: "torch"}
# The CNN's constructor parameters and defaults (what ``families`` reads instead of importing the class).
CNN_SIGNATURE = (("width", 16), ("epochs", 30), ("seconds", 30.0), ("learning_rate", 0.003), ("batch_size", 32),
                 ("dropout", 0.3), ("weight_decay", 0.0001), ("shift", 0.1), ("patience", 6),
                 ("stop_fraction", 0.15), ("random_state", 0))
# A card's starting point: 30 s is split among the folds one search run holds (10 s each for three), so with the
# images read and torch imported a search run of digits-images stays well inside its 60 s timeout.
CNN_DEFAULTS = {k: v for k, v in CNN_SIGNATURE if k not in ("stop_fraction", "random_state")}
SIDES = (8, 12, 16, 24, 32, 48, 64)  # the ladder the side moves along
TREE_MAX_SIDE = 32  # beyond it the pixel columns (3 x 32 x 32) make tree and linear fits slow
PIXEL_PREFIX, HISTOGRAM_PREFIX = "img_px", "img_hist"


def scripted(path: str) -> bool:
    return path in SCRIPTED


def library_of(path: str) -> str:
    """The top-level module a model class needs installed: its own, or torch for the classes scripts define."""
    return SCRIPTED.get(path, path.split(".")[0])


def draft_spec(ctx: TaskContext, path: str) -> ImageSpec | None:
    """The image step a draft starts with (None: the task has no images). The CNN reads colour pixels at 32x32 and
    normalises them itself; trees and linear models get 16x16 pixels as each one's distance from the image's median
    colour (the shape whatever the colours) plus 8-bin colour histograms (the colours whatever the position)."""
    if ctx.images is None:
        return None
    if scripted(path):
        return ImageSpec(side=32, colour="rgb")
    return ImageSpec(side=16, colour="contrast", histogram_bins=8)


def simpler(ctx: TaskContext, spec: ImageSpec | None) -> ImageSpec | None:
    """The image step of an ablation's simplified preprocess: none when the task has table columns (so the variant
    shows what the images add), else grey pixels at the same side and nothing more (the script needs features)."""
    if spec is None or ctx.columns:
        return None
    return ImageSpec(side=spec.side, colour="grey")


# --- the rendered image step ------------------------------------------------------------------------------------

IMPORTS = ["import os", "from concurrent.futures import ThreadPoolExecutor", "", "from PIL import Image"]
_COLOUR = {
    "rgb": ("its RGB pixels", []),
    "grey": ("its grey pixels", ["pixels = small @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)"]),
    "contrast": ("each pixel's distance from the image's median colour (the shape, whatever the colours)",
                 ["pixels = np.sqrt(((small - np.median(small, axis=(0, 1))) ** 2).sum(axis=2, keepdims=True) / 3)"]),
}


def _functions(ctx: TaskContext, spec: ImageSpec, column: str, suffix: str) -> list[str]:
    """The image step's constants and functions: ``image_features(frame, folder)`` gives a frame's image columns."""
    channels = 3 if spec.colour == "rgb" else 1
    bins = spec.histogram_bins
    pixels = _COLOUR[spec.colour][1] or ["pixels = small"]
    out = [
        f"IMAGE_COLUMN, IMAGE_SUFFIX = {column!r}, {suffix!r}  # ./input/<folder>/<IMAGE_COLUMN value><IMAGE_SUFFIX>",
        f"IMAGE_SIDE, IMAGE_CHANNELS, HISTOGRAM_BINS = {spec.side}, {channels}, {bins}",
        f'IMAGE_NAMES = [f"{PIXEL_PREFIX}{{c}}_{{y}}_{{x}}" for c in range(IMAGE_CHANNELS) for y in range(IMAGE_SIDE) '
        "for x in range(IMAGE_SIDE)]",
        *([f'IMAGE_NAMES += [f"{HISTOGRAM_PREFIX}{{c}}_{{b}}" for c in range(3) for b in range(HISTOGRAM_BINS)]']
          if bins else []),
        "",
        "",
        "def image_row(image):",
        '    """One image\'s columns: its pixels at IMAGE_SIDE x IMAGE_SIDE (0-1, channel by channel)'
        + (', then its histograms."""' if bins else '."""'),
        '    rgb = image.convert("RGB")',
        "    small = np.asarray(rgb.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR), "
        "dtype=np.float32) / 255.0",
        *("    " + line for line in pixels),
    ]
    if spec.standardise:
        out += ["    # each channel centred and scaled on this image alone: lighting and colour casts drop out",
                "    pixels = (pixels - pixels.mean(axis=(0, 1))) / (pixels.std(axis=(0, 1)) + 1e-3)"]
    out += ["    parts = [pixels.transpose(2, 0, 1).ravel()]"]
    if bins:
        out += ["    full = np.asarray(rgb)",
                "    parts += [np.histogram(channel, bins=HISTOGRAM_BINS, range=(0, 256))[0] / channel.size",
                "              for channel in full.transpose(2, 0, 1)]"]
    out += [
        "    return np.concatenate(parts)",
        "",
        "",
        "def read_image(path):",
        '    """The image\'s columns, or None when it is missing or unreadable."""',
        "    try:",
        "        with Image.open(path) as image:",
        '            image.draft("RGB", (4 * IMAGE_SIDE, 4 * IMAGE_SIDE))  # a JPEG decodes at a reduced size',
        "            return image_row(image)",
        "    except (OSError, ValueError):",
        "        return None",
        "",
        "",
        "def image_features(frame, folder):",
        '    """IMAGE_NAMES columns for each row of ``frame``; a missing or unreadable image leaves gaps."""',
        "    paths = [os.path.join(folder, name + IMAGE_SUFFIX) for name in frame[IMAGE_COLUMN].astype(str)]",
        "    # Pillow decodes with the GIL released, so large files read faster with one reader per core (300 JPEGs of",
        "    # 500x375: 0.82 s with one, 0.52 s with two); small ones are mostly Python work, where threads only contend",
        "    # (digits' 32x32 PNGs: 1.1 s with one, 1.6 s with two)",
        "    sizes = [os.path.getsize(p) for p in paths[:20] if os.path.isfile(p)]",
        '    cores = max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))',
        "    readers = cores if sizes and sum(sizes) / len(sizes) > 32_000 else 1",
        "    with ThreadPoolExecutor(readers) as pool:",
        "        rows = list(pool.map(read_image, paths))",
        "    values = np.full((len(frame), len(IMAGE_NAMES)), np.nan, dtype=np.float32)",
        "    for i, row in enumerate(rows):",
        "        if row is not None:",
        "            values[i] = row",
        "    return pd.DataFrame(values, columns=IMAGE_NAMES, index=frame.index)",
    ]
    return out


def describe(spec: ImageSpec) -> str:
    """What the step's columns are, for the comment above it."""
    what = _COLOUR[spec.colour][0] + (", each channel standardised on its own image" if spec.standardise else "")
    bins = f", plus a histogram per RGB channel ({spec.histogram_bins} bins)" if spec.histogram_bins else ""
    return f"downscaled to {spec.side}x{spec.side}: {what}{bins}"


def image_step(ctx: TaskContext, spec: ImageSpec) -> str:
    """The preprocess block's image step: its image columns joined to each frame's table columns, as numeric ones."""
    info = ctx.images
    folders = {"train": info.train_folder, "valid": info.train_folder, "test": info.test_folder}
    about = (f"Images: each row's picture read with Pillow and {describe(spec)}. Nothing is fitted (each row's "
             "columns come from its own image), so no row leaks into another's. Validation rows are training images.")
    return "\n".join([
        *("# " + line for line in textwrap.wrap(about, 116)),
        "IMAGE_FOLDERS = {" + ", ".join(f'"{part}": "./input/{folder}"' for part, folder in folders.items()) + "}",
        *_functions(ctx, spec, info.column, info.suffix),
        "",
        "",
        'X_train = pd.concat([X_train, image_features(train, IMAGE_FOLDERS["train"])], axis=1)',
        'X_valid = pd.concat([X_valid, image_features(valid, IMAGE_FOLDERS["valid"])], axis=1)',
        'X_test = pd.concat([X_test, image_features(test, IMAGE_FOLDERS["test"])], axis=1)',
        "numeric += IMAGE_NAMES",
    ])


# --- refinement options -----------------------------------------------------------------------------------------

def image_ops(ctx: TaskContext, spec: ImageSpec, members: list) -> list[tuple[dict, str, float]]:
    """(changed fields, plan text, priority) of each change of the image step worth trying; ``space.ops`` makes
    them ``set_images`` ops. A model block of CNNs only reads pixels, so histograms are not offered to it."""
    convnet = bool(members) and all(scripted(m.estimator) for m in members)
    out: list[tuple[dict, str, float]] = []
    side = spec.side
    larger = [s for s in SIDES if s > side and (convnet or s <= TREE_MAX_SIDE)]
    smaller = [s for s in SIDES if s < side]
    channels = 3 if spec.colour == "rgb" else 1
    if larger:
        out.append(({"side": larger[0]}, f"Read the images at {larger[0]}x{larger[0]} instead of {side}x{side}: "
                    f"finer detail ({channels * larger[0] ** 2} pixel columns).", 0.5 if convnet else 0.35))
    if smaller:
        out.append(({"side": smaller[-1]}, f"Read the images at {smaller[-1]}x{smaller[-1]} instead of {side}x{side}: "
                    "coarser pixels, fewer columns (less noise, faster fits).",
                    0.45 if channels * side ** 2 > 1000 and not convnet else 0.3))
    colours = {
        "contrast": ("Turn each image into its pixels' distance from the image's median colour (one channel: the shape "
                     f"whatever the background and ink colours) instead of {spec.colour} pixels.",
                     0.35 if convnet else 0.5),
        "grey": (f"Read the images in greyscale (one luminance channel) instead of {spec.colour} pixels: a third of "
                 "the columns.", 0.35),
        "rgb": (f"Read the images in colour (three RGB channels) instead of {spec.colour} pixels: the colours may "
                "carry the signal.", 0.4 if convnet else 0.3),
    }
    out += [({"colour": colour}, text, priority) for colour, (text, priority) in colours.items()
            if colour != spec.colour]
    if spec.standardise:
        out.append(({"standardise": False}, "Stop standardising each image on its own: absolute brightness and colour "
                    "may carry signal.", 0.2))
    else:
        out.append(({"standardise": True}, "Standardise each image's channels by their own mean and spread, so "
                    "lighting and colour casts drop out.", 0.45))
    if not convnet:
        if spec.histogram_bins == 0:
            out.append(({"histogram_bins": 8}, "Add an 8-bin histogram per RGB channel of each image (the share of "
                        "pixels in each intensity band): its colours and brightness, wherever they are.", 0.4))
        else:
            if spec.histogram_bins < 32:
                more = spec.histogram_bins * 2
                out.append(({"histogram_bins": more}, f"Use {more} histogram bins per RGB channel instead of "
                            f"{spec.histogram_bins}: finer colour bands.", 0.25))
            out.append(({"histogram_bins": 0}, "Drop the colour histograms.", 0.15))
    return out


def group_of(args: dict) -> str:
    (field, value), = list(args.items())[:1] or [("", "")]
    return f"preprocess.images.{field}={value}"


def apply(spec: PreprocessSpec, args: dict) -> PreprocessSpec | None:
    """``spec`` with its image step's fields changed (None: no image step, or a change that does not validate)."""
    if spec.images is None or not args:
        return None
    try:
        images = ImageSpec.model_validate({**spec.images.model_dump(), **args})
    except ValueError:
        return None
    return spec.model_copy(update={"images": images})


# --- the CNN a script defines -----------------------------------------------------------------------------------

CNN_SOURCE = '''
# A small convolutional network in torch (CPU), as a scikit-learn estimator over the image step's pixel columns.
import math
import os
import time

import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from torch import nn
from torch.nn import functional as F

PIXEL_COLUMN = re.compile(r"img_px(\\d+)_(\\d+)_(\\d+)$")  # channel, row and column of an image step's pixel


def time_share(seconds):
    """A fit's share of a time slice, as the tuning study's: the folds one process runs in turn split it
    (MLESTAR_FOLDS), and the final run (its input keeps the search's folds in validation_folds/) gets what one
    search fold got. Not more for its extra rows: a run's reserve for the final rerun is capped (20 s of a 90 or
    120 s budget), and a final CNN given a fold's slice scaled by rows timed out past it on digits-images."""
    kept = os.path.join("input", "validation_folds")
    shared = os.environ.get("MLESTAR_FOLDS") or (len(os.listdir(kept)) if os.path.isdir(kept) else 1)
    return seconds / max(1, int(shared))


class ImageCNN(BaseEstimator):
    """Three blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling (width, 2 x width, 4 x width channels),
    dropout and a linear head; Adam with a cosine learning-rate decay, images shifted at random by up to ``shift`` of
    their side. Training ends after ``epochs``, when this fit's share of ``seconds`` is spent, or when the loss on
    held-out training rows (``stop_fraction``) has not improved for ``patience`` epochs; the best epoch's weights are
    kept. Only the pixel columns are read: other columns (histograms, table columns) are ignored.
    """

    def __init__(self, width=16, epochs=30, seconds=30.0, learning_rate=0.003, batch_size=32, dropout=0.3,
                 weight_decay=0.0001, shift=0.1, patience=6, stop_fraction=0.15, random_state=0):
        self.width = width
        self.epochs = epochs
        self.seconds = seconds
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.shift = shift
        self.patience = patience
        self.stop_fraction = stop_fraction
        self.random_state = random_state

    def _layout(self, X):
        """(the pixel columns' positions in channel, row, column order; the image shape), from the column names."""
        names = [str(c) for c in getattr(X, "columns", [])]
        found = sorted((tuple(int(g) for g in m.groups()), i)
                       for i, m in enumerate(map(PIXEL_COLUMN.search, names)) if m)
        if found:
            return [i for _, i in found], (found[-1][0][0] + 1, found[-1][0][1] + 1, found[-1][0][2] + 1)
        width = np.shape(X)[1]  # unnamed columns: all of them pixels, colour or grey
        for channels in (3, 1):
            side = int(round(math.sqrt(width / channels)))
            if channels * side * side == width:
                return list(range(width)), (channels, side, side)
        raise ValueError(f"no image pixel columns among {width} columns (the image step names them img_px<c>_<y>_<x>)")

    def _pixels(self, X):
        return np.asarray(X, dtype=np.float32)[:, self.columns_].reshape(-1, *self.shape_)

    def _scaled(self, values):
        """The network's input, (rows, 2 x channels, side, side): each channel scaled by the training rows' mean and
        spread, then again standardised on its own image (lighting and colour casts removed: on digits-images'
        random colours, eight epochs reached 0.74 test accuracy with them, 0.29 without); gaps become 0."""
        own = (values - values.mean(axis=(2, 3), keepdims=True)) / (values.std(axis=(2, 3), keepdims=True) + 1e-3)
        return torch.from_numpy(np.nan_to_num(np.concatenate([(values - self.mean_) / self.std_, own], axis=1)))

    def _tensor(self, X):
        return self._scaled(self._pixels(X))

    def _network(self, outputs):
        channels, side = 2 * self.shape_[0], self.shape_[1]
        layers = []
        for k in range(3):
            width = int(self.width) * 2 ** k
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            channels, side = width, (side + 1) // 2
        return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(self.dropout),
                             nn.Linear(channels * side * side, outputs))

    def _shifted(self, batch, rng):
        """Each image moved by up to ``shift`` of its side in each direction, its edges repeated."""
        side = batch.shape[-1]
        reach = int(round(self.shift * side))
        if reach < 1:
            return batch
        padded = F.pad(batch, (reach,) * 4, mode="replicate")
        dy, dx = rng.integers(0, 2 * reach + 1, size=(2, len(batch)))
        return torch.stack([padded[i, :, dy[i]:dy[i] + side, dx[i]:dx[i] + side] for i in range(len(batch))])

    @staticmethod
    def _rate(epoch, planned):
        """The learning rate's share in an epoch of ``planned`` (what the time slice allows): a linear warm-up over
        the first quarter, then a cosine decay (on digits-images, eight epochs reached 0.79 and 0.73 test accuracy
        for two seeds with it, 0.77 and 0.56 with the decay alone)."""
        warm = max(1, planned // 4)
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - warm) / max(1, planned - warm)))

    def _forward(self, images):
        self.net_.eval()
        with torch.no_grad():
            return torch.cat([self.net_(part) for part in images.split(512)]) if len(images) else \\
                torch.zeros((0, self.outputs_))

    def _fit(self, X, target, outputs, loss):
        began = time.monotonic()
        budget = time_share(self.seconds)
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)))
        self.columns_, self.shape_ = self._layout(X)
        self.outputs_ = outputs
        values = self._pixels(X)
        order = rng.permutation(len(values))
        held = int(len(values) * self.stop_fraction) if len(values) >= 50 else 0  # early-stopping rows
        stop, fit = order[:held], order[held:]
        self.mean_ = np.nanmean(values[fit], axis=(0, 2, 3)).reshape(-1, 1, 1)
        self.std_ = np.nanstd(values[fit], axis=(0, 2, 3)).reshape(-1, 1, 1) + 1e-6
        images = self._scaled(values)
        self.net_ = self._network(outputs)
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        best, best_state, waited, planned = math.inf, None, 0, int(self.epochs)
        started = time.monotonic()
        deadline = began + budget
        for epoch in range(int(self.epochs)):
            for group in optimiser.param_groups:
                group["lr"] = self.learning_rate * self._rate(epoch, planned)
            self.net_.train()
            for rows in torch.from_numpy(fit[rng.permutation(len(fit))]).split(int(self.batch_size)):
                if len(rows) < 2:  # batch norm needs two rows
                    continue
                if time.monotonic() > deadline:  # an epoch longer than the slice: stop within it
                    break
                optimiser.zero_grad()
                loss(self.net_(self._shifted(images[rows], rng)), target[rows]).backward()
                optimiser.step()
            self.epochs_ = epoch + 1
            per_epoch = (time.monotonic() - started) / (epoch + 1)
            planned = max(epoch + 2, min(int(self.epochs), int((budget - (started - began)) / per_epoch)))
            if held:
                value = float(loss(self._forward(images[stop]), target[stop]))
                if value < best - 1e-4:
                    best, waited = value, 0
                    best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
                else:
                    waited += 1
                if waited >= self.patience:
                    break
            if time.monotonic() + per_epoch > deadline:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.seconds_ = time.monotonic() - began
        print(f"{type(self).__name__}: {self.epochs_} epochs in {self.seconds_:.1f} s (slice {budget:.1f} s)")
        return self


class ImageCNNClassifier(ClassifierMixin, ImageCNN):
    def fit(self, X, y):
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        return self._fit(X, torch.from_numpy(codes.astype(np.int64)), len(self.classes_), F.cross_entropy)

    def predict_proba(self, X):
        return torch.softmax(self._forward(self._tensor(X)), dim=1).numpy().astype(float)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class ImageCNNRegressor(RegressorMixin, ImageCNN):
    def fit(self, X, y):
        y = np.asarray(y, dtype=np.float32)
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std()) or 1.0
        target = torch.from_numpy((y - self.y_mean_) / self.y_std_).reshape(-1, 1)
        return self._fit(X, target, 1, F.mse_loss)

    def predict(self, X):
        return self._forward(self._tensor(X)).numpy().ravel().astype(float) * self.y_std_ + self.y_mean_
'''


def class_source(present: list[str] = ()) -> str:
    """The CNN classes' source for a model block, without the import lines ``present`` has already (it reads ``re``
    and ``np`` from the imports block)."""
    lines = CNN_SOURCE.strip("\n").splitlines()
    return "\n".join(line for line in lines if not (line.startswith("import ") and line in present))


def scripted_class(path: str):
    """The class a script would define for ``path``, built from its source here (it needs torch), to inspect it."""
    import os
    import re

    import numpy as np
    import pandas as pd

    namespace = {"os": os, "re": re, "np": np, "pd": pd}
    exec(compile(class_source(), f"<{path}>", "exec"), namespace)  # noqa: S102 - the framework's own source
    return namespace[path.rpartition(".")[2]]


# --- the cards' example scripts ---------------------------------------------------------------------------------

_EXAMPLE_MODELS = {
    "cnn": ("a small CNN in torch", [], "ImageCNNClassifier(random_state=0)", "ImageCNNRegressor(random_state=0)"),
    "lightgbm": ("LightGBM on pixel features", ["from lightgbm import LGBMClassifier, LGBMRegressor"],
                 "LGBMClassifier(**PARAMS)", "LGBMRegressor(**PARAMS)"),
}


def example_script(model: str) -> str:
    """A standalone example for a catalogue card: the image step and the model on an MLE-bench image competition
    (train.csv with id and label, images in train/ and test/ named <id>.png); a policy adapts the names."""
    title, imports, classifier, regressor = _EXAMPLE_MODELS[model]
    spec = draft_spec(_EXAMPLE_CONTEXT, CNN_CLASSIFIER if model == "cnn" else "")
    return "\n".join([
        f'"""Images with {title}: every image read with Pillow into pixel columns, then fitted and scored.',
        "",
        "Adapt ID, TARGET, IMAGE_FOLDERS and IMAGE_SUFFIX to the task; valid.csv rows are training images.",
        '"""',
        "",
        "import os",
        "import re",
        "from concurrent.futures import ThreadPoolExecutor",
        "",
        "import numpy as np",
        "import pandas as pd",
        *imports,
        "from PIL import Image",
        "from sklearn import metrics",
        "",
        'ID, TARGET = "id", "label"',
        'IMAGE_FOLDERS = {"train": "./input/train", "valid": "./input/train", "test": "./input/test"}',
        *(["PARAMS = dict(n_estimators=250, learning_rate=0.1, max_bin=63, verbose=-1, random_state=0)"]
          if model == "lightgbm" else []),
        *_functions(_EXAMPLE_CONTEXT, spec, "id", ".png"),
        "",
        "",
        *((class_source().splitlines() + ["", ""]) if model == "cnn" else []),
        'train, valid, test = (pd.read_csv(f"./input/{part}.csv") for part in ("train", "valid", "test"))',
        'X_train = image_features(train, IMAGE_FOLDERS["train"])',
        'X_valid = image_features(valid, IMAGE_FOLDERS["valid"])',
        'X_test = image_features(test, IMAGE_FOLDERS["test"])',
        "# labels (text, or a few whole numbers) are classes; other numbers are values to regress",
        "y = train[TARGET]",
        "classification = not pd.api.types.is_numeric_dtype(y) or (y.nunique() <= 20 and bool((y % 1 == 0).all()))",
        f"model = {classifier} if classification else {regressor}",
        "model.fit(X_train, y)",
        "val_predictions = pd.DataFrame({ID: valid[ID], TARGET: model.predict(X_valid)})",
        'pd.DataFrame({ID: test[ID], TARGET: model.predict(X_test)}).to_csv("submission.csv", index=False)',
        'val_predictions.to_csv("val_predictions.csv", index=False)',
        "score = (metrics.accuracy_score(valid[TARGET], val_predictions[TARGET]) if classification else",
        "         float(np.sqrt(metrics.mean_squared_error(valid[TARGET], val_predictions[TARGET]))))",
        'print(f"Final Validation Performance: {score:.6f}")',
        "",
    ])


_EXAMPLE_CONTEXT = TaskContext(
    name="example", goal="", task_type="classification", metric="accuracy", maximize=True, proba=False,
    target="label", id_column="id", prediction_columns=["label"], columns=[], n_train=0, n_valid=0, n_test=0,
    files=[], modality="image", images={"column": "id", "suffix": ".png", "train_folder": "train",
                                        "test_folder": "test"})
