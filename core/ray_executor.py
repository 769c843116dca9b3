"""The ``ray`` executor: each script is a task on an existing Ray cluster, run on its worker by the local executor
(same sandbox, limits and clean environment); inputs go out and run folders come back through Ray's object store,
or stay where they are on a shared filesystem. The cache, scoring and run store stay on the driver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from loguru import logger

from core.bundles import pack_folder, pack_inputs, unpack_folder, unpack_inputs
from core.executor import SCRIPT_NAME, Executor, ExecutorOptions, RunRequest, RunResult, Status
from core.folds import fold_dirs
from core.sandbox import linked_assets

LOST = "ray worker lost"  # opens the message of a run whose worker or node died
FAILED = "ray task failed"  # opens the message of a run whose worker-side code raised (a full disk, no bubblewrap)
NODE_FILE = "ray_node.json"  # in each run folder: the node that ran it
QUEUE_GRACE = 300.0  # seconds a task may wait for a worker and for its files, beyond its script's timeout
INPUT_CACHE = "mlestar-ray-inputs"  # under a worker's temp folder: input bundles unpacked once per node
INPUT_CACHE_SECONDS = 86400.0  # an unpacked input bundle nobody used for this long is removed
CONNECT_SECONDS = 10.0  # for the head's GCS port to answer


@dataclass
class RayOptions(ExecutorOptions):
    """The local executor's options (they confine each script on its worker) plus where the cluster is and what
    each script asks of it."""

    address: str | None = None  # "auto" (a cluster this machine belongs to), "host:port" or "ray://host:10001"
    shared_dir: str | None = None  # a folder every node sees at the same path: runs and inputs under it stay put
    num_cpus: float = 1  # Ray resources each script asks for; its OMP/BLAS threads follow num_cpus
    num_gpus: float = 0
    memory_request_mb: int | None = None  # memory Ray reserves per script (memory_mb stays the sandbox's cap)
    retries: int = 0  # times Ray reruns a script whose worker died (0: reported as lost, the search goes on)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError("executor 'ray' needs options.address: 'auto' to join the cluster this machine belongs "
                             "to, or 'host:6379' / 'ray://host:10001'; it never starts a cluster of its own (start "
                             "one with `ray start --head`)")
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < (name == "num_cpus") * 1e-9:
                raise ValueError(f"executor option {name} must be a number {'> 0' if name == 'num_cpus' else '≥ 0'}, "
                                 f"not {value!r}")
        if self.memory_request_mb is not None and (isinstance(self.memory_request_mb, bool) or
                                                   not isinstance(self.memory_request_mb, int) or
                                                   self.memory_request_mb < 1):
            raise ValueError(f"executor option memory_request_mb must be a whole number ≥ 1 or null, "
                             f"not {self.memory_request_mb!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"executor option retries must be a whole number ≥ 0, not {self.retries!r}")
        if self.gpus:
            raise ValueError("executor option gpus is the local executor's; on ray, ask for num_gpus per script")
        if self.shared_dir is not None and not Path(self.shared_dir).is_absolute():
            raise ValueError(f"executor option shared_dir must be an absolute path, not {self.shared_dir!r}")

    def local(self) -> ExecutorOptions:
        """What the local executor on a worker runs one script with: these limits (the worker adds its GPUs)."""
        base = {name: getattr(self, name) for name in ExecutorOptions.__dataclass_fields__}
        return ExecutorOptions(**{**base, "workers": 1, "cache": False})


class RayExecutor(Executor):
    """Scripts as Ray tasks; ``workers`` bounds the tasks in flight."""

    def __init__(self, options: RayOptions, *, fit_workers: bool = False, **kwargs):
        """``fit_workers``: set ``workers`` to as many scripts as the cluster's live nodes fit at once."""
        ray = _ray()
        _connect(ray, options.address)
        fits = _fitting(ray.nodes(), options)
        if not fits:
            raise ValueError(f"no node of the Ray cluster at {options.address} has {options.num_cpus:g} CPUs, "
                             f"{options.num_gpus:g} GPUs and {options.memory_request_mb or 0} MB free for one "
                             f"script (executor options num_cpus, num_gpus, memory_request_mb)")
        super().__init__(replace(options, workers=fits) if fit_workers else options, **kwargs)
        self.isolation = options.isolation if options.isolation == "none" else _cluster_isolation(ray, options)
        asks = {"memory": options.memory_request_mb * 2**20} if options.memory_request_mb else {}
        self._task = ray.remote(run_on_worker).options(num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                                                       max_retries=options.retries, **asks)
        self._inputs: dict[str, object] = {}  # input folder fingerprint: its bundle in the object store
        self._inputs_guard = threading.Lock()
        self._shared: dict[Path, bool] = {}

    def execute(self, request: RunRequest, workdir: Path) -> RunResult:
        return self._dispatch(request, workdir, folds=0)[0]

    def execute_folds(self, request: RunRequest, workdir: Path, folds: list[Path]) -> list[RunResult]:
        """All folds in one task, run on the worker as the local executor runs them (one process)."""
        with self._slots:
            return self._dispatch(self.started(request), workdir, folds=len(folds))

    def _reusable(self, request: RunRequest, key: str, workdir: Path) -> RunResult | None:
        """A run whose worker was lost or failed says nothing about its script: it is never served from the
        cache."""
        result = super()._reusable(request, key, workdir)
        return None if result is not None and (LOST in result.message or FAILED in result.message) else result

    def _dispatch(self, request: RunRequest, workdir: Path, folds: int) -> list[RunResult]:
        ray = _ray()
        shared = self._on_shared_dir(request.input_dir, workdir)
        if not folds and workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        bundle = None if shared else self._bundle(request.input_dir)
        ref = self._task.remote(replace(request, info=None), bundle, self.fingerprint(request.input_dir),
                                self.options.local(), max(1, int(self.options.num_cpus)), folds,
                                str(workdir) if shared else None)
        try:
            texts, packed, node = ray.get(ref, timeout=request.timeout + QUEUE_GRACE)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            return self._failed(workdir, folds, Status.TIMEOUT, f"no result from the Ray cluster within the "
                                f"{request.timeout:g} s timeout and {QUEUE_GRACE:g} s for queueing and transfer")
        except ray.exceptions.RayTaskError as exc:  # the worker-side code raised: the machine, not the script
            cause = getattr(exc, "cause", None) or exc
            return self._failed(workdir, folds, Status.ERROR, f"{FAILED} on its worker: {_line(cause)}")
        except ray.exceptions.RayError as exc:  # the worker, its node or the object holding the result is gone
            return self._failed(workdir, folds, Status.ERROR, f"{LOST}: {type(exc).__name__}: {_line(exc)}")
        if packed is not None:
            unpack_folder(packed, workdir)
        logger.debug(f"run {workdir.name} ran on node {node['node_id'][:12]} ({node['hostname']})")
        results = [RunResult.from_json(text) for text in texts]
        for result in results:
            result.workdir = workdir / result.workdir
        return results

    def _failed(self, workdir: Path, folds: int, status: Status, message: str) -> list[RunResult]:
        logger.warning(f"run {workdir.name}: {message}")
        dirs = [workdir / f"fold{k}" for k in range(folds)] or [workdir]
        return [RunResult(status=status, seconds=0.0, workdir=d, message=message) for d in dirs]

    def _bundle(self, input_dir: Path):
        """The input folder's bundle in the object store, packed and put once per content."""
        key = self.fingerprint(input_dir)
        with self._inputs_guard:
            if key not in self._inputs:
                self._inputs[key] = _ray().put(pack_inputs(input_dir))
            return self._inputs[key]

    def _on_shared_dir(self, input_dir: Path, workdir: Path) -> bool:
        """Whether the run folder, the input folder and the assets it links to all lie under ``shared_dir``
        (then workers use them in place)."""
        if self.options.shared_dir is None:
            return False
        root = Path(self.options.shared_dir).resolve()
        if input_dir not in self._shared:
            folder = Path(input_dir)
            paths = [folder, *linked_assets([folder, *fold_dirs(folder)]).values()]
            self._shared[input_dir] = all(Path(p).resolve().is_relative_to(root) for p in paths)
        return self._shared[input_dir] and workdir.resolve().is_relative_to(root)


def run_on_worker(request: RunRequest, bundle: bytes | None, input_key: str, options: ExecutorOptions,
                  threads: int, folds: int, shared_workdir: str | None) -> tuple[list[str], bytes | None, dict]:
    """On a worker: run one request (``folds``: that many fold runs in one process) with the local executor;
    returns its results (run folders relative to the run's), the run folder packed (None when it is shared) and
    the node that ran it."""
    from core.local_executor import LocalExecutor  # the worker's own copy of the framework
    import ray

    node = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
            "pid": os.getpid()}
    scratch = Path(tempfile.mkdtemp(prefix="mlestar-ray-run-"))
    try:
        input_dir = request.input_dir if bundle is None else _cached_inputs(bundle, input_key)
        workdir = Path(shared_workdir) if shared_workdir else scratch / "run"
        gpus = [int(g) for g in ray.get_gpu_ids()]
        local = LocalExecutor(replace(options, gpus=gpus), out_dir=scratch / "executor", threads=threads)
        request = replace(request, input_dir=input_dir)
        if folds:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / SCRIPT_NAME).write_text(request.code)
            results = local.execute_folds(request, workdir, fold_dirs(input_dir))
        else:
            results = [local.execute(request, workdir)]
        (workdir / NODE_FILE).write_text(json.dumps(node))
        texts = [replace(r, workdir=r.workdir.relative_to(workdir)).to_json() for r in results]
        mounts = frozenset({"input", *(f"fold{k}/input" for k in range(folds))})
        return texts, None if shared_workdir else pack_folder(workdir, skip=mounts), node
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _cached_inputs(bundle: bytes, key: str) -> Path:
    """The input bundle unpacked on this node, once per content (tasks on one node share it; the sandbox mounts
    it read-only); bundles unused for a day are removed."""
    root = Path(tempfile.gettempdir()) / INPUT_CACHE
    root.mkdir(exist_ok=True)
    dest = root / key[:24]
    if not dest.is_dir():
        fresh = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
        unpack_inputs(bundle, fresh)
        try:
            fresh.rename(dest)
        except OSError:  # another task on this node unpacked it first
            shutil.rmtree(fresh, ignore_errors=True)
    os.utime(dest)
    for old in root.iterdir():
        try:
            if old != dest and time.time() - old.stat().st_mtime > INPUT_CACHE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return dest / "input"


def _ray():
    """The ray module, or one line on how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("executor 'ray' needs the ray package: pip install 'mlestar[ray]'") from None
    return ray


def _connect(ray, address: str) -> None:
    """Join the cluster at ``address`` (once per process); never start one."""
    if ray.is_initialized():
        return
    host, _, port = address.rpartition(":")
    if "://" not in address and host and port.isdigit():  # Ray itself retries a dead GCS address for minutes
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
        except OSError as exc:
            raise ValueError(f"cannot join the Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
                             f"or fix executor.options.address") from None
    try:
        # the driver's environment (API keys) is not forwarded: no runtime_env, and scripts get a clean one anyway
        ray.init(address=address, log_to_driver=False, logging_level="WARNING", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ValueError(f"cannot join the Ray cluster at {address!r} ({_line(exc)}); start one with "
                         f"`ray start --head` or fix executor.options.address") from None


def _fitting(nodes: list[dict], options: RayOptions) -> int:
    """How many scripts the cluster's live nodes fit at once."""
    total = 0
    for node in nodes:
        have = node.get("Resources", {}) if node.get("Alive") else {}
        asks = [(have.get("CPU", 0), options.num_cpus), (have.get("GPU", 0), options.num_gpus),
                (have.get("memory", 0) / 2**20, options.memory_request_mb or 0)]
        total += int(min(free // ask if ask else 1e9 for free, ask in asks))
    return total


def _cluster_isolation(ray, options: RayOptions) -> str:
    """bwrap when bubblewrap runs on every live node, else none (isolation: bwrap refuses such a cluster): the
    framework's fail-closed check reads it. A node that joins later and lacks it fails its runs."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(_bwrap_here)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    try:
        works = ray.get([probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                         .remote() for n in nodes], timeout=120)
    except ray.exceptions.RayError as exc:
        raise ValueError(f"cannot ask the Ray cluster's nodes whether bubblewrap runs there ({type(exc).__name__}: "
                         f"{_line(exc)}); is mlestar installed on every node?") from None
    if all(works):
        return "bwrap"
    if options.isolation == "bwrap":
        raise ValueError("isolation 'bwrap' asked for, but bubblewrap cannot run on every node of the Ray cluster; "
                         "install it there or set executor.options.isolation: none")
    return "none"


def _bwrap_here() -> bool:
    from core.sandbox import bwrap_works
    return bwrap_works()


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def make_ray_executor(options: dict, *, out_dir: Path, store=None, run_id: str = "") -> RayExecutor:
    """A core.factories.ExecutorFactory: ``workers`` defaults to the scripts the cluster fits at once."""
    return RayExecutor(RayOptions.from_dict(options), fit_workers="workers" not in options, out_dir=out_dir,
                       store=store, run_id=run_id)
