"""A throwaway Ray cluster on this machine, for the ray executor's tests and benchmark: a head and further nodes
started with ``ray start`` under a temp folder of their own, offline, and stopped by killing exactly their
processes (``ray stop`` would stop every Ray process of this user)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


@dataclass
class LocalCluster:
    root: Path  # the nodes' temp folder: sessions, logs, sockets, and the workers' temp files
    address: str  # host:port of the head's GCS, for executor.options.address
    env: dict[str, str]

    def add_node(self, cpus: int = 1) -> None:
        """One more node (its own raylet and workers) joined to the head."""
        _ray_start(self.env, ["--address", self.address, "--num-cpus", str(cpus)])

    def kill_node(self, node_id: str) -> bool:
        """SIGKILL the raylet of node ``node_id`` (a real loss: its workers die with it); whether one was found."""
        for pid, cmdline in _processes():
            if "raylet/raylet" in cmdline.split("\0")[0] and f"--node_id={node_id}" in cmdline:
                os.kill(pid, signal.SIGKILL)
                return True
        return False

    def stop(self) -> None:
        """Kill every process of this cluster (those naming its folder, and their descendants); remove the folder."""
        mine = {pid for pid, cmdline in _processes() if str(self.root) in cmdline}
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        todo, found = list(mine), set()
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo += children.get(pid, [])
        for pid in found - {os.getpid()}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(nodes: int = 2, cpus: int = 1) -> LocalCluster:
    """A head with ``cpus`` CPUs and ``nodes - 1`` more nodes like it, on 127.0.0.1, with no dashboard and no usage
    statistics; its workers import this checkout (PYTHONPATH) and see none of this process's secrets."""
    root = Path(tempfile.mkdtemp(prefix="mlray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    (root / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in SECRET_WORDS)}
    env.update(RAY_TMPDIR=str(root), TMPDIR=str(root / "tmp"), PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = LocalCluster(root=root, address=f"127.0.0.1:{port}", env=env)
    try:
        _ray_start(env, ["--head", "--port", str(port), "--num-cpus", str(cpus), "--include-dashboard=false"])
        for _ in range(nodes - 1):
            cluster.add_node(cpus)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _ray_start(env: dict[str, str], args: list[str]) -> None:
    done = subprocess.run([str(RAY), "start", *args, "--node-ip-address", "127.0.0.1", "--temp-dir", env["RAY_TMPDIR"],
                           "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def _processes() -> list[tuple[int, str]]:
    """(pid, command line with NUL separators) of this machine's processes."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
                found.append((int(entry.name), cmdline.decode(errors="replace")))
            except OSError:
                pass
    return found


def _parents() -> dict[int, int]:
    """{pid: parent pid} of this machine's processes."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return found
