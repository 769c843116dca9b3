"""How one script process is confined: a minimal environment, resource limits, and (with bubblewrap) a filesystem
view holding only the interpreter and the run's own folder, with no network."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

# Variables a script may inherit: locale and the BLAS switches some processors need for correct results.
PASSTHROUGH = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
CPU_TOPOLOGY = "/sys/devices/system/cpu"


def minimal_env(workdir: Path, threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: no API keys or tokens, the home and temp folder inside the run's folder."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
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


def limit_resources(memory_mb: int | None, disk_mb: int | None = None):
    """A pre-exec function that caps the child's address space and the size of any file it writes (SIGXFSZ
    beyond it), inherited by everything it starts."""
    def apply() -> None:
        if memory_mb:
            size = int(memory_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if disk_mb:
            size = int(disk_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


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


def isolated_command(cmd: list[str], workdir: Path, inputs: list[tuple[Path, Path]],
                     network: bool = False) -> list[str]:
    """``cmd`` wrapped in bubblewrap: system folders and the interpreter read-only, the run folder writable, the
    task's public inputs read-only ((folder, mount point inside ``workdir``) pairs: ``workdir/input``, or one per
    fold), nothing else of the host's files, and no network."""
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
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
    args += ["--chdir", str(workdir), "--"]
    return args + cmd
