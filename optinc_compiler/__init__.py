"""OptINC compiler: trained ONN weights -> MZI mesh phases -> chip layout and phase program.

The stages are separate modules (docs/architecture.md, "Data flow"): :mod:`~optinc_compiler.mzi` (the
convention), :mod:`~optinc_compiler.decompose`, :mod:`~optinc_compiler.compiler`,
:mod:`~optinc_compiler.program`, :mod:`~optinc_compiler.io`, :mod:`~optinc_compiler.cli`.
Importing the package imports nothing heavy.
"""

__version__ = "0.1.0"
