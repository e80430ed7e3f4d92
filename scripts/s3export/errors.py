class ExportError(Exception):
    """A user-facing problem (bad input, unsupported model): printed as one line, exit code 1."""
