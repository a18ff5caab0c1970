"""Exception hierarchy of the OptINC compiler.

Every error a user can cause derives from :class:`OptincError`; its message is one
readable line naming the bad value and what is allowed. The CLI turns these into exit
code 1 (``VerificationError``: exit code 3). This module does not import click.
"""

from __future__ import annotations


class OptincError(Exception):
    """Base class of every error the OptINC compiler raises on purpose."""

    exit_code = 1


class InputError(OptincError):
    """A weights file, matrix or option that cannot be compiled as given."""


class ProgramFormatError(OptincError):
    """A phase-program file that is not a valid phase program (v1)."""


class MissingDependencyError(OptincError):
    """An optional library needed for this input is not installed."""


class VerificationError(OptincError):
    """A rebuilt or simulated circuit does not match its target within tolerance."""

    exit_code = 3
