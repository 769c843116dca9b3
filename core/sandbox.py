"""How one script process is confined: a minimal environment, resource limits, and (with bubblewrap) a filesystem
view holding only the interpreter and the run's own folder, with no network."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

# Variables a script may inherit: locale and the BLAS switches some processors need for correct results.
PASSTHROUGH = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
CPU_TOPOLOGY = "/sys/devices/system/cpu"


RUN_MARK = "MLESTAR_RUN"  # in every run's environment: what its processes inherit, so leftovers can be found


def minimal_env(workdir: Path, threads: int, extra: dict[str, str] | None = None, run: str = "") -> dict[str, str]:
    """A clean environment: no API keys or tokens, the home and temp folder inside the run's folder, and the run's
    mark (``run``; see ``kill_marked``)."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update({RUN_MARK: run} if run else {})
    env.update({
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir), "TMPDIR": str(workdir / "tmp"), "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
        # LOKY_MAX_CPU_COUNT caps joblib's cpu_count, which LightGBM's default n_jobs reads instead of OMP_NUM_THREADS;
        # without it two parallel scripts each spin one OpenMP thread per core and crawl (60 s instead of 1 s).
        **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "LOKY_MAX_CPU_COUNT")},
    })
    env.update(extra or {})
    return env


def limited_command(cmd: list[str], memory_mb: int | None, disk_mb: int | None = None,
                    processes: "ProcessCap | None" = None) -> tuple[list[str], Callable[[], None] | None]:
    """``cmd`` with the child's address space, the size of any file it writes (SIGXFSZ beyond it) and the processes
    it may start capped, inherited by everything it starts: (command, pre-exec function or None).

    Where prlimit(1) exists the limits are in the command (a shell joins the run's cgroup first, then execs prlimit),
    so Popen starts the child with vfork: a fork of this process (hundreds of MB) and Python code before exec took
    6-25 ms per script, prlimit's exec 0.3 ms. Elsewhere a pre-exec function sets them."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return cmd, limit_resources(memory_mb, disk_mb, processes)
    limits = [f"--as={int(memory_mb) * 1024 * 1024}"] if memory_mb else []
    limits += [f"--fsize={int(disk_mb) * 1024 * 1024}"] if disk_mb else []
    if processes is not None and processes.group is None and processes.mechanism == "rlimit":
        limits.append(f"--nproc={_user_tasks() + processes.limit}")
    command = [prlimit, *limits, "--core=0", "--", *cmd]
    if processes is not None and processes.group is not None:
        command = ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(processes.group / "cgroup.procs"), *command]
    return command, None


def limit_resources(memory_mb: int | None, disk_mb: int | None = None, processes: "ProcessCap | None" = None):
    """The pre-exec function ``limited_command`` falls back to where prlimit(1) is missing."""
    def apply() -> None:
        if processes is not None:
            processes.enter()
        if memory_mb:
            size = int(memory_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if disk_mb:
            size = int(disk_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/pids"))  # cgroup v2 (unified), then v1's pids tree


class ProcessCap:
    """At most ``limit`` processes and threads for one run: a pids cgroup of its own where this user may create one
    (root, or a delegated cgroup v2 subtree), else RLIMIT_NPROC, which counts every process of a non-root user (so
    the cap is what the user already runs plus ``limit``); as root without cgroups nothing caps them."""

    def __init__(self, limit: int, name: str):
        self.limit, self.group, self.mechanism = limit, None, "none"
        for root in CGROUP_ROOTS:
            if _pids_hierarchy(root):
                try:
                    group = root / "mlestar" / name
                    group.mkdir(parents=True, exist_ok=True)
                    (group / "pids.max").write_text(str(limit))
                    self.group, self.mechanism = group, "cgroup"
                    return
                except OSError:
                    continue
        if os.getuid() != 0:
            self.mechanism = "rlimit"

    def enter(self) -> None:
        """In the child, before it runs anything: join the cgroup, or set the process limit."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text("0")
        elif self.mechanism == "rlimit":
            allowed = _user_tasks() + self.limit
            resource.setrlimit(resource.RLIMIT_NPROC, (allowed, allowed))

    def hit(self) -> bool:
        """Whether the run asked for more processes than it may have (known with a cgroup only)."""
        if self.group is None:
            return False
        try:
            events = dict(line.split() for line in (self.group / "pids.events").read_text().splitlines())
        except (OSError, ValueError):
            return False
        return int(events.get("max", 0)) > 0

    def close(self) -> None:
        """Kill whatever of the run is still alive (a process that left its process group is still in the
        cgroup) and remove the group."""
        if self.group is None:
            return
        pause = 0.001  # killed processes leave the group within milliseconds: look again soon, then less often
        for _ in range(20):
            try:
                pids = [int(p) for p in (self.group / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(pause)
            pause = min(2 * pause, 0.1)
        try:
            self.group.rmdir()
        except OSError:  # still emptying; the kernel frees it with its last process
            pass


def kill_marked(run: str) -> int:
    """Kill this user's processes whose environment carries the run's mark: without a cgroup, what a run started
    in a session of its own (setsid) is found this way. A script that clears its children's environment escapes
    it; bubblewrap's PID namespace, or a cgroup, does not let it. Returns how many were killed."""
    mark, uid, killed = f"{RUN_MARK}={run}".encode() + b"\0", os.getuid(), 0
    for _ in range(10):  # a leftover may fork while we look: look again until none is found
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if entry.stat().st_uid == uid and mark in Path(f"/proc/{entry.name}/environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                pass
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        if not found:
            break
        time.sleep(0.05)
    return killed


def _pids_hierarchy(root: Path) -> bool:
    """Whether ``root`` is a cgroup hierarchy whose children get a pids limit (v1's pids tree, or v2 with the pids
    controller enabled for children)."""
    try:
        if (root / "cgroup.controllers").is_file():  # v2
            return "pids" in (root / "cgroup.subtree_control").read_text().split()
        return root.name == "pids" and (root / "cgroup.procs").is_file()
    except OSError:
        return False


def _user_tasks() -> int:
    """Processes and threads of this user now (what RLIMIT_NPROC counts)."""
    uid, total = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    total += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return total


@lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """Whether bubblewrap is installed and may create namespaces here (checked once per process)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        probe = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-net", "--die-with-parent", "true"],
                               capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links and mount points are not followed)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed while we looked
                pass
    return total


def linked_assets(folders: list[Path]) -> dict[str, str]:
    """{what an input folder's symlink names: the real path it reaches} for the links at the top of each folder:
    the task's asset folders and archives (core.assets), mounted read-only where the links expect them."""
    found = {}
    for folder in folders:
        for entry in os.scandir(folder):
            if entry.is_symlink() and os.path.isabs(os.readlink(entry.path)) and os.path.exists(entry.path):
                found[os.readlink(entry.path)] = os.path.realpath(entry.path)
    return found


GPU_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")  # what every CUDA process opens


def gpu_devices(dev: Path = Path("/dev")) -> list[str]:
    """The NVIDIA device nodes a script given a GPU needs inside the sandbox: every GPU's node (the driver numbers
    them; CUDA_VISIBLE_DEVICES picks the one the run holds) and the control nodes, those that exist here."""
    gpus = sorted(p.name for p in dev.glob("nvidia[0-9]*"))
    return [str(dev / name) for name in [*gpus, *GPU_CONTROL] if (dev / name).exists()]


def isolated_command(cmd: list[str], workdir: Path, inputs: list[tuple[Path, Path]],
                     network: bool = False, devices: list[str] = ()) -> list[str]:
    """``cmd`` wrapped in bubblewrap: system folders and the interpreter read-only, the run folder writable, the
    task's public inputs read-only ((folder, mount point inside ``workdir``) pairs: ``workdir/input``, or one per
    fold), the host ``devices`` asked for (a GPU's nodes), nothing else of the host's files, and no network."""
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for device in devices:
        args += ["--dev-bind", device, device]
    if not network:
        args.append("--unshare-net")
    if Path(CPU_TOPOLOGY).is_dir():  # read by lscpu, so joblib counts physical cores instead of warning on stderr
        args += ["--ro-bind", CPU_TOPOLOGY, CPU_TOPOLOGY]
    for d in SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    seen: set[str] = set()
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.prefix),
                   os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable))}:
        if prefix not in seen and not any(prefix.startswith(s + "/") for s in SYSTEM_DIRS):
            seen.add(prefix)
            args += ["--ro-bind", prefix, prefix]
    args += ["--bind", str(workdir), str(workdir)]
    for src, mount in inputs:
        args += ["--ro-bind", str(src), str(mount)]
    for link, target in sorted(linked_assets([src for src, _ in inputs]).items()):
        args += ["--ro-bind", target, link]  # the link's own text must resolve inside the sandbox too
    args += ["--chdir", str(workdir), "--"]
    return args + cmd
