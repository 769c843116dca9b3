"""Errors a user can cause: each carries one line that says which file, which key, and what to do."""


class UserError(Exception):
    """Bad input from the user; the CLI prints its message alone and exits with code 2."""

    exit_code = 2


class TaskError(UserError):
    """task.yaml (or a file it names) is invalid."""


class PluginError(UserError):
    """A plugin failed to import, raised in a hook, or registered something invalid."""
