"""Errors the translator reports to its user.

The CLI catches :class:`DataError` and prints its message on one line, exiting with status 2,
so every message must say what was wrong, where (file, line, byte offset) and what to do instead.
"""


class DataError(Exception):
    """A problem with the user's data or data files (missing, corrupt, malformed), not a bug."""
