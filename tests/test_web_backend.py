"""The `web` search backend: queries built from the task, ddgs results turned into cards, the on-disk cache, backoff
after rate limits, and the fallback to the offline catalogue on this machine's real, unreachable network.

No real search result can be recorded here (no internet), so the results below are written by hand in the shape ddgs
documents for ``DDGS().text``; the only stand-in is the web itself (``StandInForTheWeb``), never the backend's code.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
from loguru import logger

from core.cards import CardQuery, ModelCard
from core.errors import TaskError
from core.policy import TaskContext
from plugins.heuristic.policy import HeuristicPolicy
from retrieval.catalogue import CatalogueBackend
from retrieval.web import WebBackend, build_queries, cards_from_results

# Hand-written, in ddgs's documented text-result shape: a list of {"title", "href", "body"} dicts.
HAND_WRITTEN_DDGS_RESULTS = [
    {"title": "Winning a tabular Kaggle competition with LightGBM", "href": "https://example.org/lgbm-kaggle",
     "body": "Our solution stacked LightGBM and CatBoost models; LightGBM alone reached 0.97 accuracy."},
    {"title": "Random forest vs gradient boosting on small data", "href": "https://example.org/rf-vs-gbm",
     "body": "On a few hundred rows a random forest often matches boosted trees."},
    {"title": "Tuning LGBM for classification", "href": "https://example.org/tuning-lgbm",
     "body": "num_leaves, learning rate and early stopping."},
    {"title": "Penguin species, explained", "href": "https://example.org/penguins",
     "body": "Adelie, Chinstrap, Gentoo."},
    {"title": "a result without an address", "href": "", "body": "naive bayes"},
]
PENGUINS = CardQuery(task_type="classification", goal="# Palmer penguins: which species is it?\n\nPredict the species.",
                     metric="accuracy", n_rows=275, n_features=7, has_categorical=True, has_missing=True)


class StandInForTheWeb:
    """Answers ``text()`` like ``ddgs.DDGS`` would, from a script of outcomes (a result list, or an exception to
    raise); the last outcome repeats. Records every query it is asked."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes) or [HAND_WRITTEN_DDGS_RESULTS]
        self.asked: list[tuple[str, dict]] = []

    def text(self, query, **kwargs):
        self.asked.append((query, kwargs))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def logged():
    """Every loguru record emitted while the test runs."""
    records = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(sink)


def warnings(records) -> list[str]:
    return [r["message"] for r in records if r["level"].no >= logger.level("WARNING").no]


def backend(tmp_path, *outcomes, sleeps=None, **options) -> tuple[WebBackend, StandInForTheWeb]:
    web = StandInForTheWeb(*outcomes)
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return WebBackend(options, cache_dir=tmp_path / "cache", client=web, sleep=sleep), web


# --- queries and results ---------------------------------------------------------------------------------------

def test_queries_name_the_task_type_metric_goal_words_and_data_traits():
    assert build_queries(PENGUINS) == [
        "best model for tabular classification accuracy palmer penguins species kaggle",
        "kaggle winning solution tabular classification palmer penguins species",
        ("best machine learning model tabular classification categorical features missing values small dataset "
         "accuracy"),
    ]


def test_queries_of_a_text_or_image_task_name_its_modality_and_no_column_traits():
    spooky = CardQuery(task_type="classification", goal="# Spooky author identification", metric="log_loss",
                       n_rows=19_579, n_features=1, has_categorical=True, modality="text", text_columns=1)
    cactus = CardQuery(task_type="classification", goal="# Aerial cactus identification", metric="roc_auc",
                       n_rows=17_500, modality="image", has_images=True)

    assert build_queries(spooky)[0] == "best model for text classification log_loss spooky author identification kaggle"
    assert build_queries(spooky)[2] == "best machine learning model text classification large dataset log_loss"
    assert build_queries(cactus)[1] == "kaggle winning solution image classification aerial cactus identification"
    assert not any("tabular" in q for q in build_queries(spooky) + build_queries(cactus))


def test_a_result_naming_a_cnn_maps_to_the_image_card_only_on_a_task_with_images():
    results = [{"title": "A simple CNN gets 0.99 AUC", "href": "https://example.org/cnn", "body": "convolutional"},
               {"title": "LightGBM on pixels", "href": "https://example.org/pixels", "body": "lightgbm"}]
    cactus = CardQuery(task_type="classification", goal="# Aerial cactus", metric="roc_auc", n_rows=17_500,
                       modality="image", has_images=True)

    on_images = cards_from_results(results, cactus, 5)
    on_a_table = cards_from_results(results, PENGUINS, 5)

    assert [card.name for card in on_images] == ["image_cnn", "lightgbm_pixels"]
    assert [card.name for card in on_a_table] == ["lightgbm"]


def test_hand_written_ddgs_results_become_web_cards_most_mentioned_first(tmp_path, logged):
    web_backend, web = backend(tmp_path, max_results=7, region="uk-en", backend="duckduckgo")

    cards = web_backend.search(PENGUINS, limit=3)

    assert [query for query, _ in web.asked] == build_queries(PENGUINS)
    assert web.asked[0][1] == {"max_results": 7, "region": "uk-en", "backend": "duckduckgo"}
    # LightGBM in two results; CatBoost (→ hist gradient boosting), gradient boosting and random forest in one each,
    # ties in the order first mentioned.
    assert [card.name for card in cards] == ["lightgbm", "hist_gradient_boosting", "gradient_boosting"]
    assert {card.source for card in cards} == {"web"}
    assert cards[0].score_hint == 2.0
    assert "'Winning a tabular Kaggle competition with LightGBM' (https://example.org/lgbm-kaggle)" in cards[0].why
    assert cards[0].estimator is not None and cards[0].example_code  # a catalogue card the draft node can use
    assert warnings(logged) == []


def test_the_default_mapping_is_the_heuristic_policys_summariser_unchanged():
    ctx = TaskContext(name="penguins", goal=PENGUINS.goal, task_type="classification", metric="accuracy",
                      maximize=True, proba=False, target="species", id_column="id", prediction_columns=["species"],
                      columns=[], n_train=220, n_valid=55, n_test=69, files=[])

    mapped = cards_from_results(HAND_WRITTEN_DDGS_RESULTS, ctx.card_query(), 5)

    assert mapped == HeuristicPolicy().summarize_search(ctx, HAND_WRITTEN_DDGS_RESULTS, 5)


def test_a_summariser_turns_the_results_into_cards_and_the_catalogue_tops_them_up(tmp_path, logged):
    web_backend, _ = backend(tmp_path, queries=["tabular classification kaggle"])
    written = ModelCard(name="tabpfn", family="transformer", task_types=["classification"],
                        why="A prior-fitted transformer for small tables.", example_code="print('tabpfn')",
                        source="web")
    asked = []

    def summarize(results, limit):
        asked.append((results, limit))
        return [written]

    cards = web_backend.search(PENGUINS, limit=3, summarize=summarize)

    [(results, limit)] = asked
    assert limit == 3
    assert [r["href"] for r in results] == [r["href"] for r in HAND_WRITTEN_DDGS_RESULTS[:4]]  # no address: dropped
    catalogue = CatalogueBackend().search(PENGUINS, 2)
    assert cards == [written, *catalogue]
    assert any("1 card(s) from 4 results, 2 more from the offline catalogue" in r["message"] for r in logged)


def test_a_summariser_with_nothing_leaves_the_keyword_mapping_to_answer(tmp_path):
    web_backend, _ = backend(tmp_path, queries=["tabular classification kaggle"])

    cards = web_backend.search(PENGUINS, limit=1, summarize=lambda results, limit: None)

    assert [card.name for card in cards] == ["lightgbm"] and cards[0].source == "web"


def test_results_naming_no_model_fall_back_to_the_catalogue_with_one_warning(tmp_path, logged):
    off_topic = [{"title": "Penguin facts", "href": "https://example.org/facts", "body": "They live in Antarctica."}]
    web_backend, _ = backend(tmp_path, off_topic)

    cards = web_backend.search(PENGUINS, limit=3)

    assert cards == CatalogueBackend().search(PENGUINS, 3)
    assert warnings(logged) == ["web search: none of 1 results named a model to draft; using the offline catalogue"]


# --- cache -----------------------------------------------------------------------------------------------------

def test_a_second_search_is_served_from_the_disk_cache(tmp_path):
    first, web = backend(tmp_path, queries=["tabular classification kaggle"])
    cards = first.search(PENGUINS, limit=3)
    again, web_again = backend(tmp_path, queries=["tabular classification kaggle"])  # a rerun: new backend object

    assert again.search(PENGUINS, limit=3) == cards
    assert len(web.asked) == 1 and web_again.asked == []
    [cached] = (tmp_path / "cache").glob("web-*.json")
    saved = json.loads(cached.read_text())
    assert saved["query"] == "tabular classification kaggle"
    assert saved["options"] == {"max_results": 10, "region": "us-en", "backend": "auto"}
    assert len(saved["results"]) == 4
    assert list((tmp_path / "cache").glob("*.tmp")) == []  # written atomically


def test_options_that_change_results_change_the_cache_key(tmp_path):
    backend(tmp_path, queries=["tabular classification kaggle"])[0].search(PENGUINS, limit=3)
    other, web = backend(tmp_path, queries=["tabular classification kaggle"], max_results=3)

    other.search(PENGUINS, limit=3)

    assert len(web.asked) == 1
    assert len(list((tmp_path / "cache").glob("web-*.json"))) == 2


# --- rate limits, timeouts and failures ------------------------------------------------------------------------

@pytest.mark.parametrize("exception", [RatelimitException, TimeoutException])
def test_rate_limits_and_timeouts_are_retried_with_exponential_backoff(tmp_path, exception, logged):
    sleeps = []
    web_backend, web = backend(tmp_path, exception("slow down"), exception("slow down"), HAND_WRITTEN_DDGS_RESULTS,
                               sleeps=sleeps, queries=["tabular classification kaggle"], retries=3)

    cards = web_backend.search(PENGUINS, limit=2)

    assert len(web.asked) == 3 and sleeps == [1.0, 2.0]
    assert [card.name for card in cards] == ["lightgbm", "hist_gradient_boosting"]
    assert warnings(logged) == []


def test_retries_are_bounded_in_count_then_the_catalogue_answers(tmp_path, logged):
    sleeps = []
    web_backend, web = backend(tmp_path, RatelimitException("https://lite.duckduckgo.com/lite/ 202 Ratelimit"),
                               sleeps=sleeps, retries=2)

    cards = web_backend.search(PENGUINS, limit=3)

    assert len(web.asked) == 3 and sleeps == [1.0, 2.0]  # one query, 1 + 2 retries; the other queries not tried
    assert cards == CatalogueBackend().search(PENGUINS, 3)
    assert warnings(logged) == [
        "web search unreachable (RatelimitException: lite.duckduckgo.com 202 Ratelimit); using the offline catalogue"]
    assert list((tmp_path / "cache").glob("*")) == []  # failures are not cached: the next run asks again


def test_retries_stop_at_the_time_bound(tmp_path):
    sleeps = []
    web_backend, web = backend(tmp_path, TimeoutException("timed out"), sleeps=sleeps, retries=5, max_seconds=0.5)

    web_backend.search(PENGUINS, limit=3)

    assert len(web.asked) == 1 and sleeps == []  # the first backoff (1 s) would pass the 0.5 s bound


def test_other_search_errors_skip_that_query_without_retrying(tmp_path):
    web_backend, web = backend(tmp_path, DDGSException("No results found."), HAND_WRITTEN_DDGS_RESULTS)

    cards = web_backend.search(PENGUINS, limit=1)

    assert len(web.asked) == 3 and cards[0].name == "lightgbm"


def test_the_real_unreachable_network_falls_back_to_the_catalogue_with_one_warning(tmp_path, logged):
    web_backend = WebBackend({"timeout": 5, "retries": 1, "max_seconds": 20}, cache_dir=tmp_path / "cache")

    started = time.monotonic()
    cards = web_backend.search(PENGUINS, limit=3)
    seconds = time.monotonic() - started

    assert cards == CatalogueBackend().search(PENGUINS, 3)
    [warning] = warnings(logged)
    assert warning.startswith("web search unreachable (") and warning.endswith("); using the offline catalogue")
    assert seconds < 30  # here DNS fails at once: about 0.1 s
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def silent_proxy():
    """A real local proxy that accepts connections and never answers: a network that hangs instead of failing."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in held:
        connection.close()


def test_a_hanging_network_is_given_up_at_max_seconds(tmp_path, monkeypatch, silent_proxy, logged):
    monkeypatch.setenv("DDGS_PROXY", silent_proxy)  # ddgs reads it when its client is built
    web_backend = WebBackend({"timeout": 1, "retries": 1, "max_seconds": 3}, cache_dir=tmp_path / "cache")

    started = time.monotonic()
    cards = web_backend.search(PENGUINS, limit=3)
    seconds = time.monotonic() - started

    assert cards == CatalogueBackend().search(PENGUINS, 3)
    assert 1 <= seconds < 4.5
    [warning] = warnings(logged)
    assert warning.startswith("web search unreachable (TimeoutException: ")


# --- options and registration ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({"engine": "bing"}, "unknown option 'engine'"),
    ({"queries": "one phrase"}, "option 'queries' must be a non-empty list"),
    ({"retries": -1}, "option 'retries' must be an integer >= 0"),
    ({"timeout": 0}, "option 'timeout' must be a positive number"),
])
def test_bad_options_are_one_line_task_errors(options, message):
    with pytest.raises(TaskError, match=message):
        WebBackend(options)


def test_web_and_history_are_registered_search_backends(registry):
    from retrieval.history import HistoryBackend

    assert registry.search_backends["web"] is WebBackend
    assert registry.search_backends["history"] is HistoryBackend
