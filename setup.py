"""Build the C kernels of the mesh decompositions; all metadata lives in pyproject.toml."""

import sys

from setuptools import Extension, setup

# -O3 where the compiler understands it; MSVC has its own defaults.
extra = [] if sys.platform == "win32" else ["-O3", "-std=c99", "-ffp-contract=fast"]

setup(
    ext_modules=[
        Extension("optinc_compiler._kernels", ["optinc_compiler/_kernels.c"], extra_compile_args=extra),
    ]
)
