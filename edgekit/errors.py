"""The one error type users see: a single line naming the file and the problem."""


class EdgekitError(Exception):
    """A problem with the user's input or environment, reported as one line and exit code 2."""


def run_reporting(main) -> None:
    """Run a command's ``main()``; an :class:`EdgekitError` becomes its one line on stderr and exit code 2."""
    import sys

    try:
        main()
    except EdgekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
