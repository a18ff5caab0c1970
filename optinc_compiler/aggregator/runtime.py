"""JAX runtime settings for the aggregator's small, compile-bound training jobs.

The networks are tiny (K <= ~12 modes), so XLA's compile time dominates: at the default
backend optimisation level a training chunk takes 8-10 s to compile on these 2-core
machines, at level 0 about 2.5 s, and (N=4, b=4) trains end to end in ~30 s instead of
~47 s. The flags only take effect before JAX starts its backend, so the entry points
(CLI, benchmark, tests) call :func:`configure_cpu` before importing jax. Results depend
on the flags (XLA fuses differently), so designs state the flags they were trained with.
"""

from __future__ import annotations

import os
import sys

#: Flags appended to ``XLA_FLAGS``: fast compiles, one thread for tiny matrices.
XLA_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_multi_thread_eigen=false")


def configure_cpu() -> bool:
    """Run JAX on the CPU with :data:`XLA_FLAGS` unless jax is already imported (then the
    flags could not apply; returns False). Values the user set are kept."""
    if "jax" in sys.modules:
        return False
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "").split()
    names = {f.split("=")[0] for f in flags}
    flags += [f for f in XLA_FLAGS if f.split("=")[0] not in names]
    os.environ["XLA_FLAGS"] = " ".join(flags)
    return True
