"""Registers the ``ray`` executor (the optional extra ``mlestar[ray]``): candidate scripts as tasks on a Ray
cluster; see core.ray_executor and docs/ray.md."""

from core.hookspecs import hookimpl
from core.ray_executor import make_ray_executor


@hookimpl
def register_executors(register):
    register("ray", make_ray_executor)
