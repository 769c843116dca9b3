"""mlestar's ground floor: task spec, metrics, plugin host, executor, run store and the command-line entry points."""

__version__ = "0.1.0"

from core.logs import silence as _silence

_silence()  # a library logs nowhere until the application enables it (core.logs.enable; the command lines do)
