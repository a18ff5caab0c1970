"""Write weights.npz: one 4x4 Haar-random unitary (seed 2026), the layer ``u4``.

Run from this folder: python make_weights.py (the committed weights.npz is its output).
"""

import numpy as np
from scipy.stats import unitary_group

np.savez("weights.npz", u4=unitary_group.rvs(4, random_state=2026))
