"""Optical in-network aggregation in distributed training (OptINC, arXiv 2603.28290):
the chip's lookup table (``lookup``), the DDP communication hook that reproduces it
(``hook``, needs PyTorch: ``pip install 'optinc-compiler[distributed]'``), the
data-parallel experiment (``experiment``), and the communication cost model
(``comm_model``, no PyTorch)."""
