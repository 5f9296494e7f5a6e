"""User-facing errors: one line, naming the file/field/object, and an exit code."""

from __future__ import annotations


class ModelzooError(Exception):
    """An error caused by input (descriptor, tag, download...), reported as one line."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class DescriptorError(ModelzooError):
    exit_code = 2


class UsageError(ModelzooError):
    exit_code = 2


class VerificationFailed(ModelzooError):
    exit_code = 3


class BudgetExceeded(ModelzooError):
    exit_code = 4
