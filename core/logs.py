"""Log set-up: a concise console view and a full log file in the run's output folder (loguru). As loguru advises
for libraries, mlestar's packages log nowhere until an application enables them (the command lines do; an app that
embeds the graph calls ``enable()`` or ``logger.enable("graphs")`` for the parts it wants)."""

from __future__ import annotations

import sys
from pathlib import Path

from loguru import logger

PACKAGES = ("ablation", "core", "graphs", "plugins", "retrieval", "rl", "space")


def silence() -> None:
    for package in PACKAGES:
        logger.disable(package)


def enable() -> None:
    for package in PACKAGES:
        logger.enable(package)


CONSOLE_FORMAT = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"


def setup_logging(out_dir: Path | None = None, verbose: bool = False) -> None:
    """The application's log view: the console, and with ``out_dir`` its run.log; mlestar's packages enabled."""
    enable()
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "INFO", format=CONSOLE_FORMAT, colorize=None)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        logger.add(Path(out_dir) / "run.log", level="DEBUG", enqueue=True, encoding="utf-8",
                   format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}:{line} {message}")
