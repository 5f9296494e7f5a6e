"""User-facing errors: one line, naming the file/field/object, and an exit code."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


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


# pydantic names the member of a union it tried (`shape.1.int`): not a field, left out of the dotted path.
_UNION_MEMBER = re.compile(r"^(int|str|float|bool|none|constrained-\w+|function-\w+\[.*\]|\w+\[.*\])$")


def format_validation_error(where: str, err: ValidationError) -> str:
    """A pydantic error as one line: `where: field.path: message (+N more)` (the first error only)."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and _UNION_MEMBER.match(p)))
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {loc or '(top level)'}: {msg}{more}"
