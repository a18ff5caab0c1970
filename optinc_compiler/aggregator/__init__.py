"""The OptINC aggregator ONN (arXiv 2603.28290, Fei, Zhang, Li, Schlichtmann 2026).

N servers send b-bit gradient codes over fibre; the aggregator chip returns the b bits of
``round_half_to_even(sum_i q_i / N)`` to every server. One module per stage:

* :mod:`~optinc_compiler.aggregator.encoding` -- the function, the optical encoding and
  the optical preprocessing that reduces the dataset (numpy only);
* :mod:`~optinc_compiler.aggregator.model` -- the ONN in JAX, layer matrices built from
  MZI phases in the convention of :mod:`optinc_compiler.mzi`;
* :mod:`~optinc_compiler.aggregator.train` -- hardware-aware training with optax;
* :mod:`~optinc_compiler.aggregator.export` -- phase program, design folder, lookup table;
* :mod:`~optinc_compiler.aggregator.evaluate` -- bit-exact accuracy through the compiled
  program, robustness to phase noise and DAC depth, hardware counts (numpy only).

Importing this package imports neither jax nor optax.
"""
