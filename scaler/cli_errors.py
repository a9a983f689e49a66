"""How the command line fails: one exception carrying the message and the exit code."""

EXIT_INVALID = 1
EXIT_UNREACHABLE = 3


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
