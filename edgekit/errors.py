"""The one error type users see: a single line naming the file and the problem."""


class EdgekitError(Exception):
    """A problem with the user's input or environment, reported as one line and exit code 2."""
