"""Free-text columns as TF-IDF n-grams: the preprocess block's vectorisers, and which models can read the sparse
matrix they make (``fits``): a model that cannot is never put beside them."""

from __future__ import annotations

from core.policy import TaskContext
from space import families
from space.specs import MemberSpec, PreprocessSpec

TEXT_TASKS = ("text", "mixed")  # modalities whose drafts start from TF-IDF features


# Boosted trees split on few n-grams: the 1,000 most frequent of each kind did as well as 20,000 in less time
# (docstring-sections, four targets, 3-fold CV: LightGBM AUC 0.6856 against 0.6794, XGBoost 0.6769 against 0.6639,
# each in a third to a half of the time). Linear models and naive Bayes keep the full vocabulary.
TREE_FEATURES = 1_000


def has_text(ctx: TaskContext) -> bool:
    return any(c.dtype == "text" for c in ctx.columns)


def sparse_features(ctx: TaskContext, spec: PreprocessSpec | None) -> bool:
    """Whether the preprocess block hands the models a sparse matrix: TF-IDF of the task's free-text columns."""
    return spec is not None and spec.text == "tfidf" and has_text(ctx)


def fits(ctx: TaskContext, member: MemberSpec, preprocess: PreprocessSpec | None) -> bool:
    """Whether ``member`` can be fitted on what ``preprocess`` makes (None: a block without a spec, inputs unknown).

    Naive Bayes needs non-negative counts: TF-IDF of text alone. On a sparse matrix, only families that fit one as
    it is (linear models, LightGBM, XGBoost, naive Bayes); a member's own StandardScaler would centre it, which
    scikit-learn refuses, so a member that brings one is out too."""
    family = families.family_of(member.estimator)
    if family is not None and family.non_negative:
        return ctx.text_only() and sparse_features(ctx, preprocess)
    if not sparse_features(ctx, preprocess):
        return True
    return family is not None and family.sparse_ok and not member.scale


def plain_mode(ctx: TaskContext) -> str:
    """The simplest text mode that leaves the model something to fit: drop the text, unless it is all there is."""
    return "stats" if ctx.text_only() else "drop"


_TFIDF = '''
# Free text, per column: TF-IDF of word 1-2-grams__CHARS__.
# Sublinear term frequencies, n-grams found in at least 2 training rows, at most __MAX__ of each kind. The
# vocabularies are learnt when the ColumnTransformer below is fitted on the training rows; the result stays sparse,
# stacked with the other columns.
TFIDF_FEATURES = __MAX__


def text_vectoriser():
    return make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=TFIDF_FEATURES),__CHAR_LINE__
    )


for frame in (X_train, X_valid, X_test):
    frame[TEXT] = frame[TEXT].fillna("").astype(str)
'''
_CHAR_LINE = ('\n        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,'
              '\n                        max_features=TFIDF_FEATURES),')


def tfidf_code(spec: PreprocessSpec) -> str:
    """The vectorisers' definition and the text columns made plain strings (the preprocess block's text part)."""
    chars = " and character 2-5-grams (within word boundaries)" if spec.tfidf_chars else ""
    return (_TFIDF.strip("\n").replace("__CHARS__", chars).replace("__MAX__", f"{spec.tfidf_features:_}")
            .replace("__CHAR_LINE__", _CHAR_LINE if spec.tfidf_chars else ""))


TFIDF_IMPORTS = ["from scipy import sparse", "from sklearn.feature_extraction.text import TfidfVectorizer",
                 "from sklearn.pipeline import make_union"]
TFIDF_PARTS = ["for column in TEXT:", '    parts.append((f"text_{column}", text_vectoriser(), column))']
SPARSE_OUTPUT = [
    'preprocessor = ColumnTransformer(parts, remainder="drop", sparse_threshold=1.0)',
    "# A sparse matrix (TF-IDF columns are mostly zeros), fitted on the training rows: linear models, naive Bayes,",
    "# LightGBM and XGBoost read it as it is.",
    "X_train = sparse.csr_matrix(preprocessor.fit_transform(X_train, y_train))",
    "X_valid = sparse.csr_matrix(preprocessor.transform(X_valid))",
    "X_test = sparse.csr_matrix(preprocessor.transform(X_test))",
]
