"""Click helpers shared by every command module: domain errors as one line with their
exit code, and a finite-number callback."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import click

from optinc_compiler.errors import InputError, OptincError
from optinc_compiler.files import shorten


class OptincClickError(click.ClickException):
    """A domain error shown as one line, with the error's own exit code."""

    def __init__(self, error: OptincError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # click declares a ClassVar


def domain_errors[F: Callable[..., Any]](func: F) -> F:
    """Turn :class:`OptincError` into a one-line message and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OptincError as exc:
            raise OptincClickError(exc) from None
        except OSError as exc:  # the file system's own refusal, where no stage foresaw it
            where = f" {shorten(exc.filename)}" if exc.filename is not None else ""
            raise OptincClickError(InputError(f"cannot access{where}: {exc.strerror or exc}")) from None

    return wrapper  # type: ignore[return-value]


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: reject nan and inf (a usage error, exit 2)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value
