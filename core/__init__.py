"""mlestar's ground floor: task spec, metrics, plugin host, executor, run store and the command-line entry points."""

__version__ = "0.1.0"
