"""Program -> netlist: names, grid, connections; the netlist carries the program's matrix."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import haar
from hypothesis import given, settings
from hypothesis import strategies as st

from optinc_compiler.compiler import CompileOptions, compile_layer
from optinc_compiler.errors import InputError
from optinc_compiler.netlist import Netlist, layer_netlist, segmented_counts


def propagate(netlist: Netlist, n_in: int, n_out: int) -> np.ndarray:
    """S[out, in] of the netlist by following its connections (ideal, lossless cells)."""
    b = np.array([[1, 1j], [1j, 1]]) / np.sqrt(2)
    incoming = {dst: src for src, dst in netlist.connections}
    outgoing_ports = {}
    s = np.zeros((n_out, n_in), dtype=complex)
    external = dict(netlist.ports)
    for j in range(n_in):
        fields = {external[f"in{j}"]: 1.0 + 0j}
        for inst in sorted(netlist.instances, key=lambda i: i.column):
            st = dict(inst.settings)

            def field(port, inst=inst, fields=fields):
                key = f"{inst.name},{port}"
                if key in fields:
                    return fields[key]
                return fields.get(incoming.get(key, ""), 0.0)

            if inst.component == "crossing":  # upper in (o2) -> lower out (o4), o1 -> o3
                fields[f"{inst.name},o4"], fields[f"{inst.name},o3"] = field("o2"), field("o1")
            elif inst.component == "mzi":
                p = lambda x: np.diag([np.exp(1j * x), 1])  # noqa: E731
                t = b @ p(st["theta_rad"]) @ b @ p(st["phi_rad"])
                upper, lower = t @ np.array([field("o2"), field("o1")])
                fields[f"{inst.name},o3"], fields[f"{inst.name},o4"] = upper, lower
            else:
                gain = {
                    "phase_shifter": np.exp(1j * st.get("phase_rad", 0.0)),
                    "attenuator": st.get("amplitude", 1.0) * np.exp(1j * st.get("phase_rad", 0.0)),
                }.get(inst.component, 1.0)
                fields[f"{inst.name},o2"] = gain * field("o1")
        for i in range(n_out):
            outgoing_ports[i] = fields.get(external[f"out{i}"], 0.0)
            s[i, j] = outgoing_ports[i]
    return s


@pytest.mark.parametrize("topology", ["clements", "reck"])
@pytest.mark.parametrize(
    ("shape", "method"),
    [
        ((4, 4), "unitary"),
        ((3, 3), "unitary"),
        ((5, 3), "svd"),
        ((2, 6), "svd"),
        ((4, 4), "ud"),
        ((1, 1), "svd"),
    ],
)
def test_netlist_realises_the_layer(topology, shape, method):
    rng = np.random.default_rng(sum(shape))
    w = haar(shape[0], 3) if method == "unitary" else rng.normal(size=shape) + 1j * rng.normal(size=shape)
    layer = compile_layer("fc1", w, CompileOptions(method=method, topology=topology))
    netlist = layer_netlist(layer)
    np.testing.assert_allclose(
        layer.scale * propagate(netlist, shape[1], shape[0]), layer.matrix(), atol=1e-12
    )


def test_grid_is_full_and_names_are_unique():
    layer = compile_layer("fc1", np.random.default_rng(0).normal(size=(4, 4)), CompileOptions(method="svd"))
    netlist = layer_netlist(layer)
    names = [i.name for i in netlist.instances]
    assert len(names) == len(set(names))
    occupancy = np.zeros((netlist.n_columns, netlist.n_modes), dtype=int)
    for inst in netlist.instances:
        for row in inst.rows:
            occupancy[inst.column, row] += 1
    assert np.all(occupancy == 1)
    # V (4 MZI columns + screen), S, U (4 + screen) for a 4x4 svd layer
    assert netlist.n_columns == 4 + 1 + 1 + 4 + 1
    mzis = [i for i in netlist.instances if i.component == "mzi"]
    assert {i.name for i in mzis} == {mid for s in layer.stages if hasattr(s, "mzi_ids") for mid in s.mzi_ids}
    assert len(netlist.connections) == (netlist.n_columns - 1) * netlist.n_modes
    assert dict(netlist.ports)["in0"].endswith(",o2") or dict(netlist.ports)["in0"].endswith(",o1")


def test_clements_even_n_has_bypasses_on_the_edge_rows():
    layer = compile_layer("u", haar(4, 0), CompileOptions(method="unitary"))
    netlist = layer_netlist(layer)
    bypass = sorted((i.column, i.mode) for i in netlist.instances if i.component == "mzi_bypass")
    assert bypass == [(1, 0), (1, 3), (3, 0), (3, 3)]


def test_netlist_dict_is_sax_style():
    layer = compile_layer("u", haar(2, 0), CompileOptions(method="unitary"))
    d = layer_netlist(layer).to_dict()
    assert set(d) == {"instances", "connections", "ports"}
    assert d["instances"]["u_U_c0_m0"]["component"] == "mzi"
    assert set(d["instances"]["u_U_c0_m0"]["settings"]) == {"theta_rad", "phi_rad"}
    assert d["ports"] == {
        "in0": "u_U_c0_m0,o2",
        "in1": "u_U_c0_m0,o1",
        "out0": "u_U_ps_m0,o2",
        "out1": "u_U_ps_m1,o2",
    }


@settings(max_examples=30, deadline=None)
@given(
    n_out=st.integers(1, 9),
    n_in=st.integers(1, 9),
    block=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_segmented_netlist_realises_the_layer_over_the_splitting_loss(n_out, n_in, block, seed):
    """Fan-out, crossings, tiles, crossings, fan-in: the layer's matrix / sqrt(R C)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_out, n_in)) + 1j * rng.normal(size=(n_out, n_in))
    layer = compile_layer("s", w, CompileOptions(method="ud-segmented", block_size=block, max_iter=20))
    netlist = layer_netlist(layer)
    fan = math.sqrt(math.ceil(n_out / block) * math.ceil(n_in / block))
    got = layer.scale * fan * propagate(netlist, n_in, n_out)
    np.testing.assert_allclose(got, layer.matrix(), atol=1e-10)
    occupancy = np.zeros((netlist.n_columns, netlist.n_modes), dtype=int)
    for inst in netlist.instances:
        for row in inst.rows:
            occupancy[inst.column, row] += 1
    assert np.all(occupancy == 1)
    assert len({i.name for i in netlist.instances}) == len(netlist.instances)
    fans, crossings = segmented_counts(layer)  # without building the netlist
    assert fans == sum(i.component == "mzi" for i in netlist.instances) - layer.n_mzis
    assert crossings == sum(i.component == "crossing" for i in netlist.instances)


def _edited(layer, **changes):
    """The layer's program document with ``changes`` applied to its blocks, loaded."""
    from optinc_compiler import program as prog

    doc = json.loads(prog.to_json(prog.PhaseProgram(layers=(layer,))))
    blocks = doc["layers"][0]["blocks"]
    if "drop" in changes:
        del blocks[changes["drop"]]
    if "row_offset" in changes:
        blocks[3]["row_offset"] = changes["row_offset"]
    if "block_size" in changes:
        doc["layers"][0]["block_size"] = changes["block_size"]
    if "no_mesh" in changes:
        blocks[0]["stages"] = [st for st in blocks[0]["stages"] if st["kind"] != "mesh"]
    return prog.from_json(json.dumps(doc), source="p.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"drop": 1},
            r"its blocks at \[\(0, 0\), \(4, 0\), \(4, 4\)\] are not the 4 x 4 tiles of a 6x7 layer",
        ),
        (
            {"row_offset": 3},
            r"its blocks at \[\(0, 0\), \(0, 4\), \(3, 4\), \(4, 0\)\] are not the 4 x 4 tiles "
            r"of a 6x7 layer \(offsets \[\(0, 0\), \(0, 4\), \(4, 0\), \(4, 4\)\]\)",
        ),
        ({"block_size": 2}, r"its blocks at .* are not the 2 x 2 tiles of a 6x7 layer"),
        ({"no_mesh": True}, r"its block at \(0, 0\) has no mesh stage"),
    ],
)
def test_segmented_programs_must_tile_the_layer(change, message):
    """A segmented program whose blocks are not the chip's tiles is refused at load
    (it would lay out and simulate as a different circuit)."""
    from optinc_compiler.program import ProgramFormatError

    layer = compile_layer("s", np.ones((6, 7)), CompileOptions(method="ud-segmented", block_size=4))
    with pytest.raises(ProgramFormatError, match=r"p.json: layers\[0\]: " + message):
        _edited(layer, **change)


def test_segmented_netlist_sections_ports_and_names():
    layer = compile_layer("s", np.ones((8, 8)), CompileOptions(method="ud-segmented", block_size=4))
    netlist = layer_netlist(layer)
    ports = dict(netlist.ports)
    # inputs enter every second row (R = 2 copies), outputs leave every second row (C = 2)
    assert ports["in3"] == "s_FO_c0_m6,o2"
    assert ports["out3"] == "s_FI_c0_m6,o3"
    kinds = {}
    for inst in netlist.instances:
        kinds.setdefault(inst.column, set()).add(inst.component)
    sections = [
        sorted(kinds[c] - {"mzi_bypass", "crossing_bypass", "attenuator_bypass"}) for c in sorted(kinds)
    ]
    assert sections[0] == ["mzi"]  # the fan-out chain
    assert sections[-1] == ["mzi"]  # the fan-in chain
    assert ["attenuator"] in sections
    assert ["crossing"] in sections
    program_mzis = {mid for s in layer.stages if hasattr(s, "mzi_ids") for mid in s.mzi_ids}
    fan_mzis = {i.name for i in netlist.instances if i.component == "mzi"} - program_mzis
    assert len(fan_mzis) == 8 + 8  # one splitter per input, one combiner per output
    assert all(name.startswith(("s_FO_c0_", "s_FI_c0_")) for name in fan_mzis)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_fan_chains_split_and_merge_evenly(n):
    from optinc_compiler.netlist import merge_chain, split_chain

    split, a = split_chain(n)
    merge, b = merge_chain(n)
    assert len(split) == len(merge) == n - 1
    np.testing.assert_allclose(np.abs(a), 1 / np.sqrt(n), atol=1e-12)
    np.testing.assert_allclose(np.abs(b), 1 / np.sqrt(n), atol=1e-12)


def test_permutation_columns_move_every_lit_row_and_never_cross_dark_rows():
    from optinc_compiler.netlist import _permutation_columns

    moves = [(0, 5), (1, 2), (4, 0), (6, 1)]
    columns = _permutation_columns(moves, 8, "p", "P1")
    position = {row: row for row in range(8)}  # start row -> where its light is now
    at = {row: row for row in range(8)}  # grid row -> start row of the light there
    for kind, crossings in columns:
        assert kind == "crossing"
        for inst in crossings:
            a, b = at[inst.mode], at[inst.mode + 1]
            assert a in dict(moves) or b in dict(moves), "two dark rows crossed"
            at[inst.mode], at[inst.mode + 1] = b, a
            position[a], position[b] = inst.mode + 1, inst.mode
    assert {src: position[src] for src, _ in moves} == dict(moves)
    assert sorted(position.values()) == list(range(8))


def test_terminators_end_the_unread_outputs_and_simulation_leaves_them_out():
    from optinc_compiler.netlist import IoSpec, add_terminators, strip_io

    layer = compile_layer("fc1", np.random.default_rng(1).normal(size=(2, 5)), CompileOptions(method="svd"))
    grid = layer_netlist(layer)
    chip = layer_netlist(layer, io=IoSpec("edge"), terminate=True)
    terms = sorted((i.mode, i.column) for i in chip.instances if i.component == "terminator")
    assert terms == [(row, grid.n_columns) for row in (2, 3, 4)]  # svd reads outputs 0, 1 of 5 rows
    assert strip_io(chip).instances == grid.instances
    assert set(strip_io(chip).connections) == set(grid.connections)
    with pytest.raises(InputError, match="netlist 'fc1' already has its chip-edge cells"):
        add_terminators(layer_netlist(layer, terminate=True))


def test_io_is_opt_in_and_adds_fans_and_couplers():
    from optinc_compiler.netlist import IoSpec

    layer = compile_layer("fc1", np.random.default_rng(2).normal(size=(2, 3)), CompileOptions(method="svd"))
    grid = layer_netlist(layer)
    assert grid.io is None
    assert all(not i.name.startswith(("fc1_gc", "fc1_fan")) for i in grid.instances)
    io = layer_netlist(layer, io=IoSpec("grating", lead_in_um=10.0))
    extra = {i.name for i in io.instances} - {i.name for i in grid.instances}
    assert extra == {f"fc1_{kind}_in{j}" for kind in ("gc", "fan") for j in range(3)} | {
        f"fc1_{kind}_out{i}" for kind in ("gc", "fan") for i in range(2)
    }
    assert dict(io.ports) == {p: f"fc1_gc_{p},o2" for p in ("in0", "in1", "in2", "out0", "out1")}
    connections = {frozenset(c) for c in io.connections}
    assert frozenset(("fc1_gc_in1,o1", "fc1_fan_in1,o1")) in connections
    assert frozenset(("fc1_fan_in1,o2", dict(grid.ports)["in1"])) in connections
    assert frozenset((dict(grid.ports)["out1"], "fc1_fan_out1,o1")) in connections
    assert len(io.connections) == len(grid.connections) + 2 * 5
    fans = {i.name: dict(i.settings) for i in io.instances if i.component == "io_fan"}
    assert fans["fc1_fan_in0"]["lead_um"] == 10.0
    # couplers at the fibre pitch: neighbouring rows' offsets differ by (127 - 30) um
    assert fans["fc1_fan_in0"]["dy_um"] - fans["fc1_fan_in1"]["dy_um"] == pytest.approx(-97.0)
    assert fans["fc1_fan_in1"]["dy_um"] == 0.0  # the middle of three rows goes straight
    columns = sorted({i.column for i in io.instances})
    assert columns == [-2, -1, *range(grid.n_columns), grid.n_columns, grid.n_columns + 1]
    edge = layer_netlist(layer, io=IoSpec("edge"))
    assert dict(edge.ports)["out1"] == "fc1_ec_out1,o2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fibre"}, "unknown I/O coupler kind 'fibre'; allowed: grating, edge"),
        ({"kind": "edge", "lead_in_um": -1.0}, "lead_in_um must be a finite length >= 0, got -1.0"),
        ({"kind": "edge", "lead_out_um": float("nan")}, "lead_out_um must be a finite length >= 0, got nan"),
    ],
)
def test_io_spec_is_validated(kwargs, message):
    from optinc_compiler.netlist import IoSpec

    with pytest.raises(InputError, match=message):
        IoSpec(**kwargs)


def test_io_cannot_be_added_twice():
    from optinc_compiler.netlist import IoSpec, add_io

    layer = compile_layer("u", haar(2, 0), CompileOptions(method="unitary"))
    with pytest.raises(InputError, match="netlist 'u' already has I/O couplers"):
        add_io(layer_netlist(layer, io=IoSpec("grating")), IoSpec("grating"))
