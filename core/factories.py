"""The signatures the ``register_*`` hooks' factories are called with, as Protocols: a plugin typed to them works
with the runner, the RL environment and ``validate``, which call them exactly so (see ``core.hookspecs``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # typing only: the registry holds these factories
    from core.cards import CardQuery, ModelCard
    from core.executor import Executor
    from core.policy import Policy
    from core.registry import Registry
    from core.store import RunStore
    from core.task import Task


class ExecutorFactory(Protocol):
    def __call__(self, options: dict, *, out_dir: Path, store: RunStore | None = None,
                 run_id: str = "") -> Executor:
        """``options``: task.yaml's ``executor.options``; ``out_dir``: where run folders go (``out_dir/runs``);
        ``store``: the run store each attempt is recorded in (None: not recorded, e.g. at validate); ``run_id``:
        the run the attempts belong to."""


class PolicyFactory(Protocol):
    def __call__(self, options: dict, *, task: Task, store: RunStore | None, registry: Registry,
                 run_id: str) -> Policy:
        """``options``: task.yaml's ``policy.options``; ``store`` and ``run_id``: where a policy records its model
        calls; ``registry``: prompts and other plugins' registrations."""


class SearchBackend(Protocol):
    def search(self, query: CardQuery, limit: int) -> list[ModelCard]:
        """Up to ``limit`` model cards for the task the query describes, best first."""


class SearchBackendFactory(Protocol):
    def __call__(self, options: dict, *, cache_dir: Path) -> SearchBackend:
        """``options``: task.yaml's ``retrieval.options``; ``cache_dir``: a folder of the run's own for caching."""


class StepSourceFactory(Protocol):
    def __call__(self, options: dict) -> list:
        """``options``: the RL config's step source options; returns ``rl.dataset.Step`` objects."""
