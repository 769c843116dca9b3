"""Errors a user can cause: each carries one line that says which file, which key, and what to do."""

# What str.splitlines() breaks a line at, each written as its escape: a message may quote the user's own files (a
# column name, a parser's complaint), and those may hold line breaks
LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


class UserError(Exception):
    """Bad input from the user; the CLI prints its message alone and exits with code 2."""

    exit_code = 2

    def __init__(self, message: str = "", *args):
        super().__init__(str(message).translate(LINE_BREAKS), *args)


class TaskError(UserError):
    """task.yaml (or a file it names) is invalid."""


class PluginError(UserError):
    """A plugin failed to import, raised in a hook, or registered something invalid."""
