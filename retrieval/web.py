"""The `web` search backend: asks a web search (ddgs) which models suit the task and turns the results into cards.

Results are cached on disk per query, rate limits and timeouts are retried with backoff, and when the web is
unreachable or says nothing usable the offline catalogue answers instead, so a run always has cards to draft.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ddgs import DDGS
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
from loguru import logger

from core.cards import CardQuery, ModelCard
from core.errors import TaskError
from core.files import write_atomic
from core.hookspecs import hookimpl
from retrieval.catalogue import CatalogueBackend, catalogue

# Web results → cards: the role `core.policy.Policy.summarize_search`, bound to the task by the retrieve node.
Summarizer = Callable[[list[dict], int], "list[ModelCard] | None"]

DEFAULTS = {"queries": None, "max_results": 10, "timeout": 5, "retries": 2, "region": "us-en", "backend": "auto",
            "max_seconds": 30}
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 8.0  # seconds before the first retry, doubling up to this

# Words in a web result that point to a catalogue card (in this order; a result may name several cards).
CARD_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lightgbm", ("lightgbm", "lgbm", "light gbm")),
    ("lightgbm_pixels", ("lightgbm", "lgbm", "light gbm")),  # on a task with images (the catalogue's choice)
    ("hist_gradient_boosting", ("histgradientboosting", "hist gradient boosting", "xgboost", "catboost",
                                "gradient boosted decision trees")),
    ("gradient_boosting", ("gradientboosting", "gradient boosting")),
    ("random_forest", ("random forest", "randomforest")),
    ("extra_trees", ("extra trees", "extratrees", "extremely randomized")),
    ("svm", ("support vector", "svm", "svc", "svr")),
    ("mlp", ("mlp", "multilayer perceptron", "multi-layer perceptron", "neural network", "deep learning")),
    ("knn", ("nearest neighbo", "knn", "k-nn")),
    ("naive_bayes", ("naive bayes",)),
    ("multinomial_nb", ("naive bayes", "multinomialnb", "multinomial nb")),
    ("image_cnn", ("cnn", "convolutional", "convnet", "resnet", "efficientnet")),
    ("linear", ("logistic regression", "ridge", "lasso", "linear regression", "linear model", "elastic net")),
)

STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "each", "for", "from", "how", "in", "is", "it", "its",
    "of", "on", "or", "the", "this", "that", "to", "was", "what", "which", "who", "with", "without", "predict",
    "prediction", "predictions", "task", "competition", "data", "dataset", "file", "files", "csv", "test", "train",
})


def cards_from_results(results: list[dict], query: CardQuery, limit: int) -> list[ModelCard]:
    """The catalogue cards the results talk about, most mentioned first (ties: first mentioned), as web cards.

    Each card keeps the first result that named it (title and address) in ``why``; ``score_hint`` is the number of
    results that named it. Cards the catalogue would not offer for the task are left out (another task type, a CNN
    without images, naive Bayes for text beside table columns, a library not installed).
    """
    offered = CatalogueBackend().search(query, len(catalogue()))
    cards = {card.name: card for card in offered}
    hits: dict[str, list[dict]] = {}
    for result in results:
        text = " ".join(str(result.get(k, "")) for k in ("title", "body")).lower()
        for name, words in CARD_KEYWORDS:
            if name in cards and any(re.search(rf"(?<![a-z]){re.escape(w)}", text) for w in words):
                hits.setdefault(name, []).append(result)
    out = []
    for name in sorted(hits, key=lambda name: -len(hits[name])):  # stable: first mentioned wins ties
        card = cards[name]
        first = hits[name][0]
        why = f"{card.why} Mentioned by {len(hits[name])} search result(s), e.g. {first.get('title', '')!r} " \
              f"({first.get('href', '')})."
        out.append(card.model_copy(update={"why": why, "source": "web", "score_hint": float(len(hits[name]))}))
    return out[: max(limit, 0)]


MODALITY_WORDS = {"mixed": "text and tabular"}  # how a search phrase names the data; the rest as they are


def build_queries(query: CardQuery) -> list[str]:
    """A few search phrasings of the task: its kind, metric, a handful of goal words and its data traits."""
    kind = f"{MODALITY_WORDS.get(query.modality, query.modality)} {query.task_type}"
    words = " ".join(goal_keywords(query.goal))
    table = query.modality in ("tabular", "mixed")  # column traits say nothing about a text's or an image's data
    traits = [t for t, present in (("categorical features", query.has_categorical and table),
                                   ("missing values", query.has_missing and table)) if present]
    if query.n_rows:
        traits.append("small dataset" if query.n_rows < 10_000 else "large dataset")
    phrasings = (
        ["best model for", kind, query.metric, words, "kaggle"],
        ["kaggle winning solution", kind, words],
        ["best machine learning model", kind, *traits, query.metric],
    )
    return [" ".join(part for part in parts if part) for parts in phrasings]


def goal_keywords(goal: str, n: int = 4) -> list[str]:
    """Up to ``n`` content words of the goal's title (its first non-empty line), in order."""
    title = next((line.strip("# ").strip() for line in goal.splitlines() if line.strip()), "")
    words = []
    for word in re.findall(r"[a-z][a-z0-9-]+", title.lower()):
        if word not in STOPWORDS and word not in words:
            words.append(word)
    return words[:n]


class WebBackend:
    """Model cards from a web search (ddgs), falling back to the offline catalogue.

    Options: ``queries`` (list of search phrases; default: built from the task, see ``build_queries``),
    ``max_results`` per query (10), ``timeout`` per engine request in seconds (5), ``retries`` after a rate limit
    or timeout (2; backoff 1 s, 2 s, 4 s ... up to 8 s), ``region`` ("us-en"), ``backend`` (ddgs engines, "auto"),
    ``max_seconds`` for all queries and retries together, a hard bound (30). Each query's results are cached as
    JSON under ``cache_dir``, keyed by the query and the options that change results, so a rerun asks the web
    nothing new.

    ``client`` is anything with ddgs's ``text(query, *, max_results, region, backend)`` method (default: a
    ``ddgs.DDGS`` with the timeout); ``sleep`` waits between retries.
    """

    def __init__(self, options: dict | None = None, *, cache_dir: Path | None = None, client=None,
                 sleep: Callable[[float], None] = time.sleep):
        self.options = _checked(dict(options or {}))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._client = client
        self._sleep = sleep
        self._catalogue = CatalogueBackend()

    def search(self, query: CardQuery, limit: int, *, summarize: Summarizer | None = None) -> list[ModelCard]:
        """Cards for the task: ``summarize(results, limit)`` (the policy's role) turns the results into cards when
        given; without it, or when it has nothing, results map to catalogue cards by keyword. Fewer cards than
        ``limit`` are topped up from the catalogue."""
        results, failure = self.results(query)
        if not results:
            logger.warning(f"web search unreachable ({failure}); using the offline catalogue" if failure else
                           "web search found no results; using the offline catalogue")
            return self._catalogue.search(query, limit)
        cards = (summarize(results, limit) if summarize is not None else None) \
            or cards_from_results(results, query, limit)
        cards = [card for card in cards if query.task_type in card.task_types][: max(limit, 0)]
        if not cards:
            logger.warning(f"web search: none of {len(results)} results named a model to draft; "
                           f"using the offline catalogue")
            return self._catalogue.search(query, limit)
        taken = {card.name for card in cards}
        extra = [card for card in self._catalogue.search(query, limit + len(taken)) if card.name not in taken]
        if len(cards) < limit and extra:
            logger.info(f"web search: {len(cards)} card(s) from {len(results)} results, "
                        f"{min(len(extra), limit - len(cards))} more from the offline catalogue")
        return (cards + extra)[: max(limit, 0)]

    def results(self, query: CardQuery) -> tuple[list[dict], str | None]:
        """Every query's results (deduplicated by address) and, when none came back, why the last query failed."""
        deadline = time.monotonic() + float(self.options["max_seconds"])
        seen: dict[str, dict] = {}
        failure = None
        for text in self.options["queries"] or build_queries(query):
            try:
                found = self._cached_or_fetched(text, deadline)
            except (DDGSException, OSError) as exc:
                failure = _reason(exc)
                logger.debug(f"web search {text!r} failed: {failure}")
                if isinstance(exc, (RatelimitException, TimeoutException)):
                    break  # retries are spent: the other queries would meet the same wall
                continue
            for result in found:
                seen.setdefault(result["href"], result)
        return list(seen.values()), None if seen else failure

    def _cached_or_fetched(self, text: str, deadline: float) -> list[dict]:
        path = self._cache_path(text)
        if path is not None and path.is_file():
            try:
                return json.loads(path.read_text())["results"]
            except (ValueError, KeyError) as exc:
                logger.debug(f"web search cache {path.name} unreadable ({exc}); asking again")
        results = parse_results(self._fetch(text, deadline))
        if path is not None and results:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({"query": text, "options": self._result_options(),
                                           "fetched_at": time.time(), "results": results}, indent=1))
        return results

    def _fetch(self, text: str, deadline: float) -> list:
        """One query, retried with exponential backoff after rate limits and timeouts; nothing waits past the
        deadline (a request still running then is abandoned to its own timeout)."""
        retries = int(self.options["retries"])
        for attempt in range(retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutException(f"no answer before the max_seconds bound ({self.options['max_seconds']:g}s)")
            try:
                return _within(left, lambda: self.client.text(
                    text, max_results=int(self.options["max_results"]), region=self.options["region"],
                    backend=self.options["backend"]))
            except (RatelimitException, TimeoutException) as exc:
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt)
                if attempt == retries or time.monotonic() + delay >= deadline:
                    raise
                logger.debug(f"web search {text!r}: {type(exc).__name__}; retrying in {delay:g}s")
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    @property
    def client(self):
        if self._client is None:  # built only when a query is not cached
            self._client = DDGS(timeout=self.options["timeout"])
        return self._client

    def _result_options(self) -> dict:
        return {key: self.options[key] for key in ("max_results", "region", "backend")}

    def _cache_path(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({"query": text, **self._result_options()}, sort_keys=True)
        return self.cache_dir / f"web-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def parse_results(raw) -> list[dict]:
    """ddgs text results as plain ``{title, href, body}`` dicts; entries without an address are dropped."""
    parsed = []
    for item in raw or []:
        if not isinstance(item, dict) or not isinstance(item.get("href"), str) or not item["href"].strip():
            continue
        parsed.append({"title": str(item.get("title") or ""), "href": item["href"].strip(),
                       "body": str(item.get("body") or "")})
    return parsed


def _checked(options: dict) -> dict:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TaskError(f"retrieval web: unknown option {unknown[0]!r} (known: {', '.join(DEFAULTS)})")
    merged = {**DEFAULTS, **options}
    queries = merged["queries"]
    if queries is not None and (isinstance(queries, str) or not isinstance(queries, list) or not queries
                                or not all(isinstance(q, str) and q.strip() for q in queries)):
        raise TaskError(f"retrieval web: option 'queries' must be a non-empty list of search phrases, got {queries!r}")
    for key, low in (("max_results", 1), ("retries", 0)):
        if isinstance(merged[key], bool) or not isinstance(merged[key], int) or merged[key] < low:
            raise TaskError(f"retrieval web: option {key!r} must be an integer >= {low}, got {merged[key]!r}")
    for key in ("timeout", "max_seconds"):
        if isinstance(merged[key], bool) or not isinstance(merged[key], (int, float)) or merged[key] <= 0:
            raise TaskError(f"retrieval web: option {key!r} must be a positive number of seconds, "
                            f"got {merged[key]!r}")
    for key in ("region", "backend"):
        if not isinstance(merged[key], str) or not merged[key]:
            raise TaskError(f"retrieval web: option {key!r} must be a non-empty string, got {merged[key]!r}")
    return merged


def _within(seconds: float, call: Callable[[], list]) -> list:
    """``call()``'s answer, or a TimeoutException once ``seconds`` pass (the call goes on in its daemon thread:
    one ddgs query walks several engines, each with the timeout, so its own timeout bounds no whole query)."""
    box: dict = {}

    def run() -> None:
        try:
            box["answer"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            box["error"] = exc

    worker = threading.Thread(target=run, name="web-search", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutException(f"no answer before the max_seconds bound ({seconds:.3g}s were left)")
    if "error" in box:
        raise box["error"]
    return box["answer"]


def _reason(exc: BaseException) -> str:
    """The error in one short line: its innermost named cause, addresses shortened to their host."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    text = re.sub(r"^(\w+): \1\('(.*)'\)$", r"\1: \2", text)  # ddgs wraps causes as "DNSError: DNSError('...')"
    text = re.sub(r"https?://([^/\s)]+)[^\s)]*", r"\1", text)
    if not re.match(r"\w+(Error|Exception): ", text):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 120 else text[:119] + "…"


@hookimpl
def register_search_backends(register):
    register("web", WebBackend)
