"""A plugin whose hook raises while the registry is built."""

from core.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    raise RuntimeError("metric table not found")
