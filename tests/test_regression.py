"""Pinned phases for fixed matrices: a change of nulling order, phase choice or id
scheme shows up here (regenerate deliberately with ``pytest --force-regen``)."""

from __future__ import annotations

import numpy as np
import pytest

from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.program import MeshStage

# Closed-form matrices (no random generator whose stream could change between versions).
DFT5 = np.exp(-2j * np.pi * np.outer(np.arange(5), np.arange(5)) / 5) / np.sqrt(5)
PHASED_PERMUTATION4 = np.eye(4)[[2, 0, 3, 1]] * np.exp(1j * np.array([0.1, 0.2, 0.3, 0.4]))


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize(("name", "matrix"), [("dft5", DFT5), ("perm4", PHASED_PERMUTATION4)])
def test_pinned_phases(topology, name, matrix, data_regression, num_regression):
    layer = compile_layer(name, matrix, CompileOptions(method="unitary", topology=topology))
    (stage,) = layer.stages
    assert isinstance(stage, MeshStage)
    mesh = stage.mesh
    data_regression.check({"ids": list(stage.mzi_ids), "depth": mesh.depth})
    num_regression.check(
        {"theta": mesh.theta_rad, "phi": mesh.phi_rad},
        default_tolerance={"atol": 1e-12, "rtol": 0},
    )
    np.testing.assert_allclose(layer.matrix(), matrix, atol=1e-14)
