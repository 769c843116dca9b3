"""The `history` search backend: ranks the catalogue's cards by how their drafts did on earlier runs of the same
kind of task, read from those runs' stores (runs.sqlite), so experience on this machine steers the next run."""

from __future__ import annotations

import glob
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from core.cards import CardQuery, ModelCard
from core.errors import TaskError
from core.hookspecs import hookimpl
from core.store import RunStore, StoreError
from retrieval.catalogue import CatalogueBackend, catalogue

DRAFT_PLAN = re.compile(r"^initial solution: (\S+)")  # the plan text the draft node gives each card's script
HOME_STORES = "~/.cache/mlestar/history/*.sqlite"


@dataclass
class Record:
    """What the earlier runs say about one card: its normalised rank in each run that drafted it."""

    ranks: list[float] = field(default_factory=list)
    wins: int = 0  # runs where no other draft scored better

    @property
    def mean(self) -> float:
        return sum(self.ranks) / len(self.ranks)


class HistoryBackend:
    """The catalogue's cards, reordered by their drafts' normalised ranks in earlier runs of the same task type.

    Option ``stores``: run stores to read, as paths or globs (``~`` expanded, relative to the working folder).
    Default: every ``runs.sqlite`` in the output folders next to this run's (``cache_dir`` is
    ``<output>/cache/search``, so ``<output>/../*/runs.sqlite``) plus ``~/.cache/mlestar/history/*.sqlite``.

    Within each earlier run of the query's task type, each card's best draft (a debugger's repair counts) is ranked
    against the run's other cards in the run's own metric direction: best 1.0, worst 0.0, failed drafts last, ties
    sharing their mean rank. A card's ``score_hint`` is its mean over the runs that drafted it; cards are returned
    in that order (ties: catalogue order), then the cards no run drafted, in catalogue order.
    """

    def __init__(self, options: dict | None = None, *, cache_dir: Path | None = None):
        options = dict(options or {})
        unknown = sorted(set(options) - {"stores"})
        if unknown:
            raise TaskError(f"retrieval history: unknown option {unknown[0]!r} (known: stores)")
        stores = options.get("stores")
        if stores is not None and (isinstance(stores, str) or not isinstance(stores, list)
                                   or not all(isinstance(s, (str, Path)) for s in stores)):
            raise TaskError(f"retrieval history: option 'stores' must be a list of paths or globs, got {stores!r}")
        self.stores = [str(s) for s in stores] if stores is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._catalogue = CatalogueBackend()

    def search(self, query: CardQuery, limit: int) -> list[ModelCard]:
        ranked = self._catalogue.search(query, len(catalogue()))  # every card, in the catalogue's order
        paths = self.store_paths()
        order = {card.name: i for i, card in enumerate(ranked)}
        records, runs = card_records(paths, query.task_type)
        records = {name: record for name, record in records.items() if name in order}  # cards the catalogue offers
        if not records:
            logger.info(f"history: no earlier {query.task_type} run with ranked drafts in {len(paths)} run "
                        f"store(s); using the catalogue's ranking")
            return ranked[: max(limit, 0)]
        seen = sorted(records, key=lambda name: (-records[name].mean, order[name]))
        cards = [_with_history(ranked[order[name]], records[name], query.task_type) for name in seen]
        cards += [card for card in ranked if card.name not in records]
        summary = ", ".join(f"{name} {records[name].mean:.2f} ({len(records[name].ranks)})" for name in seen)
        logger.info(f"history: {runs} earlier {query.task_type} run(s) in {len(paths)} run store(s) rank {summary}")
        return cards[: max(limit, 0)]

    def store_paths(self) -> list[Path]:
        """The run stores to read: the ``stores`` option or the default places, existing files only, each once."""
        patterns = self.stores
        if patterns is None:
            patterns = [HOME_STORES]
            if self.cache_dir is not None:
                patterns.insert(0, str(self.cache_dir.parent.parent.parent / "*" / "runs.sqlite"))
        found: dict[Path, None] = {}
        for pattern in patterns:
            expanded = str(Path(pattern).expanduser())
            is_glob = any(c in expanded for c in "*?[")
            matches = sorted(glob.glob(expanded)) if is_glob else [expanded]
            for match in matches:
                path = Path(match)
                if path.is_file():
                    found.setdefault(path.resolve())
                elif self.stores is not None and not is_glob:
                    logger.warning(f"history: run store {path} not found; skipped")
        return list(found)


def card_records(paths: list[Path], task_type: str) -> tuple[dict[str, Record], int]:
    """Every card's normalised draft ranks over the runs of ``task_type`` in the stores, and how many runs count."""
    records: dict[str, Record] = {}
    runs = 0
    for path in paths:
        for best, maximize in _runs_in(path, task_type):
            ranks = normalised_ranks(best, maximize)
            if not ranks:
                continue
            runs += 1
            top = (max if maximize else min)(score for score in best.values() if score is not None)
            for name, rank in ranks.items():
                record = records.setdefault(name, Record())
                record.ranks.append(rank)
                record.wins += int(best[name] == top)
    return records, runs


def _runs_in(path: Path, task_type: str) -> list[tuple[dict[str, float | None], bool]]:
    """Per run of ``task_type`` in one store: each drafted card's best score (None: every try failed)."""
    try:
        store = RunStore(path)
    except (StoreError, sqlite3.Error) as exc:
        logger.warning(f"history: {path} skipped: {exc}")
        return []
    try:
        out = []
        for run in store.runs():
            if run["task_type"] != task_type or run["maximize"] is None:
                continue
            maximize = bool(run["maximize"])
            best: dict[str, float | None] = {}
            for attempt in store.attempts(run["run_id"]):
                match = DRAFT_PLAN.match(attempt["plan"] or "")
                if not match or attempt["node"].split(":")[0] != "draft":
                    continue
                score = attempt["score"] if attempt["status"] == "ok" else None
                old = best.get(match[1])
                if old is None or (score is not None and (score > old if maximize else score < old)):
                    best[match[1]] = score
            out.append((best, maximize))
        return out
    except sqlite3.Error as exc:
        logger.warning(f"history: {path} skipped: {exc}")
        return []
    finally:
        store.close()


def normalised_ranks(best: dict[str, float | None], maximize: bool) -> dict[str, float]:
    """Best card 1.0 ... worst 0.0; cards without a score rank below every scored one; ties share their mean.

    Empty when the run says nothing about relative quality (fewer than two cards, or none scored).
    """
    if len(best) < 2 or all(score is None for score in best.values()):
        return {}
    sign = 1.0 if maximize else -1.0
    # Sort key: scored first, better first; equal keys form a tie group.
    keys = {name: (score is None, -sign * score if score is not None else 0.0) for name, score in best.items()}
    ordered = sorted(best, key=lambda name: keys[name])
    last = len(ordered) - 1
    ranks: dict[str, float] = {}
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and keys[ordered[end + 1]] == keys[ordered[start]]:
            end += 1
        mean_position = (start + end) / 2
        for name in ordered[start:end + 1]:
            ranks[name] = round(1.0 - mean_position / last, 6)
        start = end + 1
    return ranks


def _with_history(card: ModelCard, record: Record, task_type: str) -> ModelCard:
    why = (f"{card.why} History: best in {record.wins} of {len(record.ranks)} earlier {task_type} runs that "
           f"drafted it (mean normalised rank {record.mean:.2f}).")
    return card.model_copy(update={"why": why, "source": "history", "score_hint": round(record.mean, 6)})


@hookimpl
def register_search_backends(register):
    register("history", HistoryBackend)
