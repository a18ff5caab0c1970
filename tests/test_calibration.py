"""Heater model, calibration files, crosstalk compensation, DAC codes and optinc program."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import haar
from hypothesis import given, settings
from hypothesis import strategies as st

from optinc_compiler import calibration as cal
from optinc_compiler import program as prog
from optinc_compiler.cli import main
from optinc_compiler.compiler import CompileOptions, compile_layer, compile_weights
from optinc_compiler.errors import InputError
from optinc_compiler.io import NamedMatrix
from optinc_compiler.program import PhaseProgram


def _program(n: int = 4, seed: int = 1, method: str = "auto", shape=None) -> PhaseProgram:
    w = haar(n, seed) if shape is None else np.random.default_rng(seed).normal(size=shape)
    return PhaseProgram(layers=(compile_layer("L", w, CompileOptions(method=method)),))


def _realised(hp: cal.HeaterProgram, program: PhaseProgram, calibration=None) -> np.ndarray:
    specs = cal.program_heaters(program)
    c = calibration or cal.Calibration()
    k = cal.crosstalk_matrix(specs, c) if hp.crosstalk else None
    codes = np.array([h.dac_code for h in hp.heaters])
    return cal.realised_phases(
        codes, cal._heater_arrays(specs, c), k, v_max_V=c.v_max_V, dac_bits=hp.dac_bits
    )


def test_every_heater_of_the_program_is_listed_once_with_its_role():
    program = _program(shape=(3, 4), method="svd")
    layer = program.layers[0]
    hp = cal.heater_program(program)
    ids = [h.id for h in hp.heaters]
    outputs = 4 + 3  # output phase screens of the V (4 modes) and U (3 modes) meshes
    assert len(ids) == len(set(ids)) == 2 * layer.n_mzis + 2 * layer.n_attenuators + outputs
    roles = {h.role for h in hp.heaters}
    assert roles == {"theta", "phi", "output", "attenuator"}
    mzi = next(h for h in hp.heaters if h.role == "theta")
    assert mzi.id == f"{mzi.mzi}_theta" == mzi.pad
    assert all(h.mzi is None for h in hp.heaters if h.role in ("output", "attenuator"))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.integers(6, 16))
def test_phase_to_code_and_back_is_within_one_lsb(seed, bits):
    program = _program(3, seed)
    hp = cal.heater_program(program, dac_bits=bits, crosstalk=False)
    realised = _realised(hp, program)
    c = cal.Calibration()
    lsb_V = c.v_max_V / ((1 << bits) - 1)
    for h, phase in zip(hp.heaters, realised, strict=True):
        # phase is quadratic in V: one LSB at this voltage is worth d(phase)/dV * LSB
        one_lsb_rad = (
            math.pi
            / c.default.p_pi_mW
            * ((h.voltage_V + lsb_V) ** 2 - h.voltage_V**2)
            / c.default.resistance_ohm
            * 1e3
        )
        err = (phase - h.phase_rad + math.pi) % (2 * math.pi) - math.pi
        assert abs(err) <= one_lsb_rad, (h.id, err, one_lsb_rad)
        assert h.voltage_V == pytest.approx(math.sqrt(h.power_mW * 1e-3 * c.default.resistance_ohm))


def test_least_power_equivalent_phase_is_chosen():
    wanted = np.array([0.0, 0.5, 2 * math.pi - 1e-6, 3.0])
    offsets = np.array([0.0, 1.0, 0.0, 3.5])
    drive = cal.drive_phases(wanted, offsets)
    np.testing.assert_allclose(drive, [0.0, 2 * math.pi - 0.5, 2 * math.pi - 1e-6, 2 * math.pi - 0.5])
    assert np.all((drive >= 0) & (drive < 2 * math.pi))


def test_a_target_within_atol_of_a_multiple_of_two_pi_drives_zero():
    """What the decompositions leave as 2 pi - 1e-15 (the demo's onn1_U_ps_m3_phase is
    2 pi - 8e-11) is phase 0: it drives 0, not a full 2 pi (~50 mW)."""
    assert cal.PHASE_ATOL_RAD == 1e-9
    wanted = np.array([2 * math.pi - 1e-15, 6.2831853071107195, 1e-15, -1e-12, 4 * math.pi + 5e-10, 1e-6])
    drive = cal.drive_phases(wanted, np.zeros(wanted.size))
    assert drive.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 1e-6]
    assert cal.drive_phases(np.array([0.3 + 1e-10]), np.array([0.3])).tolist() == [0.0]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    phase=st.floats(-50.0, 50.0, allow_nan=False),
    offset=st.floats(-10.0, 10.0, allow_nan=False),
    near=st.sampled_from([None, 0.0, 1e-15, -1e-15, 5e-10, -5e-10]),
    turns=st.integers(-5, 5),
)
def test_drive_phases_properties(phase, offset, near, turns):
    """In [0, 2 pi), congruent to phase - offset mod 2 pi within PHASE_ATOL_RAD (and the
    round-off of reducing |x| <= 60 mod 2 pi); within the tolerance of a multiple, 0."""
    if near is not None:
        phase = offset + turns * 2 * math.pi + near
    (d,) = cal.drive_phases(np.array([phase]), np.array([offset])).tolist()
    assert 0.0 <= d < 2 * math.pi
    x = phase - offset
    gap = abs((d - x + math.pi) % (2 * math.pi) - math.pi)
    assert gap <= cal.PHASE_ATOL_RAD + 1e-13
    if near is not None:
        assert d == 0.0


# --- free heaters: phases no read output sees ---------------------------------------------


DEMO = Path(__file__).resolve().parents[1] / "designs" / "aggregator_n4_b4" / "program.json"


def test_output_phases_no_read_output_sees_are_free():
    """svd 3 x 4: V (4 modes) -> S (3 attenuators) -> U (3 modes), outputs on modes 0..2:
    V's output phase on row 3 reaches no output (the row ends in a terminator)."""
    wide = _program(shape=(3, 4), method="svd").layers[0]
    assert cal.free_heater_ids(wide) == frozenset({"L_V_ps_m3_phase"})
    thin = _program(shape=(1, 4), method="svd").layers[0]
    assert cal.free_heater_ids(thin) == {f"L_V_ps_m{k}_phase" for k in (1, 2, 3)}
    assert cal.free_heater_ids(_program(shape=(4, 3), method="svd").layers[0]) == frozenset()
    assert cal.free_heater_ids(_program(6, 3).layers[0]) == frozenset()
    w = np.random.default_rng(5).normal(size=(5, 6))
    segmented = compile_layer("s", w, CompileOptions(method="ud-segmented", block_size=4))
    assert cal.free_heater_ids(segmented) == frozenset()
    preprocess = prog.load(DEMO).layer("preprocess")  # 1 x 16: rows 1..15 end in terminators
    assert cal.free_heater_ids(preprocess) == {f"preprocess_P_ps_m{k}_phase" for k in range(1, 16)}


def test_free_heaters_change_nothing_the_layer_reads():
    """Any phase on the free heaters leaves the layer's matrix bit for bit; any change of
    another output phase changes it (the rule agrees with the stages' matrices)."""
    rng = np.random.default_rng(7)
    layers = [_program(shape=s, method="svd").layers[0] for s in ((3, 4), (1, 4), (4, 3))]
    for layer in [*layers, prog.load(DEMO).layer("preprocess")]:
        free = cal.free_heater_ids(layer)
        shifted = {h: float(rng.uniform(0, 2 * math.pi)) for h in free}
        nominal = cal.realised_matrix(layer, {})
        assert np.array_equal(cal.realised_matrix(layer, shifted), nominal)
        screens = [h for h in cal.program_heaters(PhaseProgram((layer,))) if h.role == "output"]
        for h in screens:
            if h.id not in free:
                moved = cal.realised_matrix(layer, {h.id: h.phase_rad + 0.1})
                assert np.abs(moved - nominal).max() > 1e-3, h.id


def test_free_heaters_draw_nothing_and_show_the_phase_they_get():
    """Free heaters get 0 mW and are listed with the phase they then have (offset plus
    their neighbours' heat), so phase = offset + pi (K P)_i / P_pi holds on every row."""
    program = _program(shape=(1, 4), method="svd")
    c = cal.Calibration(default=cal.HeaterCal(phase_offset_rad=0.2))
    k = cal.crosstalk_matrix(cal.program_heaters(program), c)
    for crosstalk in (True, False):
        hp = cal.heater_program(program, c, crosstalk=crosstalk)
        free = cal.free_heater_ids(program.layers[0])
        assert {h.id for h in hp.heaters if h.free} == free
        assert all(h.power_mW == 0.0 and h.dac_code == 0 for h in hp.heaters if h.free)
        power = np.array([h.power_mW for h in hp.heaters])
        heat = k @ power if crosstalk else power
        phase = np.array([h.phase_rad for h in hp.heaters])
        gap = (phase - (0.2 + math.pi * heat / 25.0) + math.pi) % (2 * math.pi) - math.pi
        assert np.abs(gap).max() < 1e-9
        shown = [h.phase_rad for h in hp.heaters if h.free]
        assert min(shown) >= 0.2
        assert (max(shown) > 0.2) == crosstalk  # V's row 0 heats them
    aware = cal.heater_program(program, c, dac_bits=6, rounding="aware")
    assert all(h.dac_code == 0 for h in aware.heaters if h.free)  # aware rounding leaves them off


# --- least total power: targets mod 2 pi chosen with the crosstalk solve -------------------


def _column(n: int, step: int = 1) -> list[cal.HeaterSpec]:
    """``n`` heaters at the same place of cells ``step`` rows apart in one grid column."""
    return [cal.HeaterSpec(f"h{r}", "L", None, "output", 0.0, 0, step * r, "phase") for r in range(n)]


def test_a_heater_heated_by_less_than_atol_is_not_moved_up_by_two_pi():
    """A 1e-8 rad target next to a 0 target: the neighbour's heat is worth 5e-10 rad of
    phase, below PHASE_ATOL_RAD; it stays at 0 mW instead of taking 2 pi (50 mW)."""
    k = cal.crosstalk_matrix(_column(2), cal.Calibration())
    power = cal.solve_powers(np.array([1e-8, 0.0]), np.full(2, 25.0), k)
    assert power.tolist() == [pytest.approx(1e-8 / math.pi * 25.0, rel=1e-6), 0.0]


def test_least_power_can_take_two_pi_on_another_heater_than_the_greedy_one():
    """Calibration crosstalk: heater 0 heats heater 2 (0.3), heater 2 heats heater 1 (0.1).
    Targets 0, 0.2, 3 rad: heater 2's 23.9 mW heat heater 1 past its 0.2 rad. Moving
    heater 1 up by 2 pi (the greedy's choice) costs 73.1 mW in all; moving heater 0 up
    instead lets heater 2 draw less, no longer overheating heater 1: 59.6 mW."""
    import scipy.sparse as sp

    k = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.1], [0.3, 0.0, 1.0]]))
    wanted, p_pi = np.array([0.0, 0.2, 3.0]), np.full(3, 25.0)
    power = cal.solve_powers(wanted, p_pi, k)
    assert power.sum() == pytest.approx(59.57, abs=0.01)
    np.testing.assert_allclose(math.pi / 25.0 * (k @ power), [2 * math.pi, 0.2, 3.0], atol=1e-12)
    assert power.min() >= 0.0


def test_greedy_is_least_exactly_when_k_inverse_is_a_z_matrix():
    """The PDK's distance model: K^-1 has no positive off-diagonal entry (Leontief, so the
    greedy's multiples are the least) in columns of up to 5 heaters one row apart (output
    phase screens, attenuators) or 3 heaters two rows apart (a Clements column's MZIs);
    longer columns have positive entries of K^-1 up to 7.9e-5 (two-hop heat paths
    outweigh the direct coupling beyond the 4-row cutoff), and the search decides."""
    pdk = cal.Calibration()
    for step, longest in ((1, 5), (2, 3)):
        for n in range(1, 17):
            k = cal.crosstalk_matrix(_column(n, step), pdk).toarray()
            assert cal.greedy_is_least(k) == (n <= longest), (step, n)
    chain = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.2], [0.0, 0.2, 1.0]])  # nearest neighbours only
    assert not cal.greedy_is_least(chain)  # (K^-1)_02 = 0.04 / 0.92 > 0


def _brute_force_power(wanted, p_pi, k_dense, free, top: int) -> tuple[float, float]:
    """Least total power over every n in {0..top-1}^live with all powers >= -atol's
    worth (each P = K_live^-1 P_pi / pi (wanted + 2 pi n), free heaters at 0), and the
    largest multiple that optimum uses."""
    import itertools

    live = np.flatnonzero(~free)
    kl, d = k_dense[np.ix_(live, live)], p_pi[live] / math.pi
    best = (math.inf, 0.0)
    for n in itertools.product(range(top), repeat=live.size):
        p = np.linalg.solve(kl, d * (wanted[live] + 2 * math.pi * np.array(n, dtype=float)))
        if np.all(p >= -cal.PHASE_ATOL_RAD * d) and p.sum() < best[0] - 1e-9:
            best = (float(p.sum()), float(max(n, default=0)))
    return best


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    size=st.integers(1, 4),
    data=st.data(),
)
def test_solve_powers_is_the_least_total_power_brute_force(size, data):
    """Small random crosstalk systems (K = I + C, 0 <= C_ij <= 0.3, sparse), targets often
    near 0 so that heaters get heated past their phase: the total power solve_powers finds
    is the least over every choice of multiples of 2 pi (brute force), with every power
    >= 0, the intended phases mod 2 pi, and the free heaters at exactly 0."""
    coefficient = st.one_of(st.just(0.0), st.floats(0.0, 0.3))
    c = np.array([[data.draw(coefficient) if i != j else 0.0 for j in range(size)] for i in range(size)])
    k_dense = np.eye(size) + c
    target = st.one_of(st.sampled_from([0.0, 1e-10, 0.05, 0.3]), st.floats(0.0, 2 * math.pi - 1e-6))
    wanted = np.array([data.draw(target) for _ in range(size)])
    p_pi = np.array([data.draw(st.floats(10.0, 40.0)) for _ in range(size)])
    free = np.array([data.draw(st.booleans()) for _ in range(size)])
    live = np.flatnonzero(~free)
    if live.size and np.any(np.linalg.inv(k_dense[np.ix_(live, live)]).sum(axis=0) <= 0):
        return  # heat that lowers the total power: rejected (its own test)
    import scipy.sparse as sp

    power = cal.solve_powers(wanted, p_pi, sp.csr_matrix(k_dense), free=free)
    assert np.all(power >= 0.0)
    assert np.all(power[free] == 0.0)
    phase = math.pi * (k_dense @ power)[live] / p_pi[live]
    gap = (phase - wanted[live] + math.pi) % (2 * math.pi) - math.pi
    assert np.abs(gap).max(initial=0.0) <= 2 * cal.PHASE_ATOL_RAD
    top = 4
    least, largest = _brute_force_power(wanted, p_pi, k_dense, free, top)
    multiples = np.rint((phase - wanted[live]) / (2 * math.pi))
    # equal up to the heaters short by less than atol's worth (0 in ours, < 0 in the brute force)
    if multiples.max(initial=0) < top:  # the optimum is inside the brute-force box
        assert power.sum() == pytest.approx(least, rel=1e-9, abs=1e-6)
    else:
        assert power.sum() <= least + 1e-6
    assert largest < top or power.sum() < least  # the box held the optimum, or ours is outside


def test_least_multiples_against_brute_force_in_every_branch():
    """Seeded random groups (K = I + C, up to 4 heaters, coefficients up to 0.35, half the
    targets near 0): least_multiples' total is the least over every n in {0..5}^m, in each
    of its branches; a search stopped early keeps the greedy's feasible multiples."""
    import itertools

    rng = np.random.default_rng(11)
    seen: dict[str, int] = {}
    for _ in range(1500):
        m = int(rng.integers(1, 5))
        c = np.where(rng.random((m, m)) < 0.6, rng.uniform(0, 0.35, (m, m)), 0.0) * (1 - np.eye(m))
        k_inv = np.linalg.inv(np.eye(m) + c)
        if np.any(k_inv.sum(axis=0) <= 0):
            continue
        d = rng.uniform(10, 40, m) / math.pi
        wanted = np.where(rng.random(m) < 0.5, rng.uniform(0, 0.5, m), rng.uniform(0, 2 * math.pi, m))
        base, step, tol = k_inv @ (d * wanted), k_inv * (2 * math.pi * d), cal.PHASE_ATOL_RAD * d
        got = cal.least_multiples(base, step, tol)
        seen[got.how] = seen.get(got.how, 0) + 1
        assert np.all(base + step @ got.multiples >= -tol)
        every = np.array(list(itertools.product(range(6), repeat=m)))  # (6^m, m)
        ok = np.all(base[:, None] + step @ every.T >= -tol[:, None], axis=0)
        assert step.sum(axis=0) @ got.multiples <= (every[ok] @ step.sum(axis=0)).min() + 1e-9
    assert set(seen) == {"z-matrix", "bounds", "search"}, seen
    # the three heaters of test_least_power_can_take_two_pi_on_another_heater_than_the_greedy_one
    k_inv = np.linalg.inv(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.1], [0.3, 0.0, 1.0]]))
    d = np.full(3, 25.0 / math.pi)
    args = (k_inv @ (d * np.array([0.0, 0.2, 3.0])), k_inv * (2 * math.pi * d), np.zeros(3))
    found = cal.least_multiples(*args)
    assert (found.how, found.multiples.tolist(), found.proven) == ("search", [1, 0, 0], True)
    stopped = cal.least_multiples(*args, search_limit=1)
    assert (stopped.how, stopped.multiples.tolist(), stopped.proven) == ("limit", [0, 1, 0], False)


def test_heat_that_lowers_the_total_power_is_rejected():
    """Heater 0 heats heaters 1 and 2 by 0.9 each: a mW more on heater 0 saves them 1.8
    mW (column sum of K^-1: 1 - 1.8 < 0), so "least total power" would favour heat."""
    import scipy.sparse as sp

    k = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.9, 1.0, 0.0], [0.9, 0.0, 1.0]]))
    wanted, p_pi = np.array([1.0, 1.0, 1.0]), np.full(3, 25.0)
    message = (
        "crosstalk: more power on heater {} lowers the total power of the 3 heaters it is "
        "coupled with (a column sum of K^-1 <= 0); check the calibration's crosstalk coefficients"
    )
    with pytest.raises(InputError) as info:
        cal.solve_powers(wanted, p_pi, k)
    assert str(info.value) == message.format("0")
    with pytest.raises(InputError) as info:
        cal.solve_powers(wanted, p_pi, k, ids=["a", "b", "c"])
    assert str(info.value) == message.format("a")


# --- the demo's heater power (issue 12, item 2) ------------------------------------------


def test_demo_heaters_whose_target_is_zero_draw_under_one_percent():
    """The demo build's heater program (designs/aggregator_n4_b4, 12-bit DAC, PDK
    defaults): the 22 heaters whose target phase is 0 mod 2 pi (the 1 x 16 layer's
    output phases, which no output sees, and the ONN's output phases, which the trained
    program leaves at 1e-11 or 2 pi - 8e-11) drew 943 of 2,224 mW."""
    program = prog.load(DEMO)
    hp = cal.heater_program(program, dac_bits=12)
    phase = np.array([h.phase_rad for h in cal.program_heaters(program)])
    zero = cal.drive_phases(phase, np.zeros(phase.size)) == 0.0
    power = np.array([h.power_mW for h in hp.heaters])
    assert zero.sum() == 22
    assert power[zero].sum() < 0.01 * power.sum()
    budget = cal.power_budget(hp)
    assert budget.total_power_mW == pytest.approx(power.sum(), rel=1e-12)
    assert budget.line() == "heaters: 94, total 1,284.3 mW, largest onn1_U_c0_m0_phi 49.6 mW at 4.98 V"
    assert [(b.layer, b.n_heaters, b.n_free) for b in budget.layers] == [
        ("preprocess", 46, 15),
        ("onn1", 48, 0),
    ]


def test_power_budget_is_what_the_heater_table_lists():
    """Per layer and in all, from the HeaterProgram alone; the largest heater with its
    voltage; no heaters: a total of 0."""
    program = PhaseProgram(
        layers=(
            _program(shape=(1, 4), method="svd").layers[0],
            compile_layer("M", haar(3, 4), CompileOptions()),
        )
    )
    hp = cal.heater_program(program)
    budget = cal.power_budget(hp)
    assert [b.layer for b in budget.layers] == ["L", "M"]
    for b in budget.layers:
        mine = [h for h in hp.heaters if h.layer == b.layer]
        assert (b.n_heaters, b.n_free) == (len(mine), sum(h.free for h in mine))
        assert b.total_power_mW == math.fsum(h.power_mW for h in mine)
        assert b.max_power_mW == max(h.power_mW for h in mine)
    assert budget.n_heaters == len(hp.heaters)
    assert budget.total_power_mW == math.fsum(h.power_mW for h in hp.heaters)
    assert budget.largest == max(hp.heaters, key=lambda h: h.power_mW)
    empty = cal.power_budget(cal.HeaterProgram((), "none", 12, 10.0, "nearest", True))
    assert (empty.layers, empty.total_power_mW, empty.largest) == ((), 0.0, None)
    assert empty.line() == "heaters: 0, total 0.0 mW"


def test_unreachable_phases_are_rejected_naming_the_heaters():
    program = _program(4, 2)
    weak = cal.Calibration(name="weak chip", v_max_V=3.0)
    with pytest.raises(InputError) as info:
        cal.heater_program(program, weak, crosstalk=False)
    message = str(info.value)
    assert message.startswith(
        "heater(s) need more than v_max_V = 3.0 V".join(message.split("heater(s) need")[:1]) + "heater(s)"
    )
    assert "need more than v_max_V = 3.0 V" in message
    assert "with calibration 'weak chip': L_U_c" in message


def test_crosstalk_compensation_restores_the_intended_phases_in_simulation():
    from optinc_compiler import simulate

    program = _program(6, 3)
    layer = program.layers[0]
    compensated = cal.heater_program(program, dac_bits=20, crosstalk=True)
    naive = cal.heater_program(program, dac_bits=20, crosstalk=False)
    # the chip has crosstalk either way: evaluate the naive codes with it
    naive_on_chip = cal.HeaterProgram(naive.heaters, naive.calibration, 20, naive.v_max_V, "nearest", True)
    for hp, lowest, highest in ((compensated, 0.99999, 1.0), (naive_on_chip, 0.0, 0.99)):
        realised = cal.quantised_program(hp, program).layers[0]
        s = simulate.layer_smatrix(realised, model_set="ideal")[0]
        f = simulate.fidelity(s, layer.matrix(), scale=layer.scale).fidelity
        assert lowest <= f <= highest, f
    k = cal.crosstalk_matrix(cal.program_heaters(program), cal.Calibration())
    assert k.nnz > k.shape[0]  # neighbours couple


def test_aware_rounding_beats_nearest_rounding():
    program = _program(6, 5)
    errors = {}
    for rounding in ("nearest", "aware"):
        hp = cal.heater_program(program, dac_bits=6, rounding=rounding)
        errors[rounding] = cal.layer_errors(program, cal.quantised_program(hp, program))["L"]
    assert errors["aware"] < 0.8 * errors["nearest"]


def test_calibration_files_json_and_csv(tmp_path):
    doc = {
        "format": "optinc-calibration",
        "version": 1,
        "name": "chip 7",
        "v_max_V": 12.0,
        "default": {"p_pi_mW": 20.0},
        "heaters": {"L_U_c0_m0_theta": {"p_pi_mW": 30.0, "phase_offset_rad": 0.25}},
        "splitters": {"L_U_c0_m0": [0.52, 0.47]},
        "crosstalk": [{"victim": "L_U_c0_m0_theta", "aggressor": "L_U_c0_m2_theta", "coefficient": 0.01}],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    c = cal.load_calibration(tmp_path / "c.json")
    assert c.name == "chip 7"
    assert c.v_max_V == 12.0
    assert c.heater("L_U_c0_m0_theta") == cal.HeaterCal(30.0, 500.0, 0.25)
    assert c.heater("other") == cal.HeaterCal(20.0, 500.0, 0.0)
    assert c.splitters == {"L_U_c0_m0": (0.52, 0.47)}
    (tmp_path / "c.csv").write_text(
        "# measured 2026-11-20\nid,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\n"
        "L_U_c0_m0_theta,30,,0.25,,\nL_U_c0_m0,,,,0.52,0.47\n"
    )
    c2 = cal.load_calibration(tmp_path / "c.csv")
    assert c2.heater("L_U_c0_m0_theta") == cal.HeaterCal(30.0, 500.0, 0.25)
    assert c2.splitters == {"L_U_c0_m0": (0.52, 0.47)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "not an optinc-calibration file of version 1 (format/version keys)"),
        (
            {"colour": 1},
            "unknown key 'colour'; allowed: "
            "crosstalk, default, format, heaters, name, splitters, v_max_V, version",
        ),
        ({"default": {"p_pi_mW": -1}}, "default.p_pi_mW is -1; allowed: a number > 0"),
        (
            {"heaters": {"h": {"R": 1}}},
            "heaters.h: unknown key 'R'; allowed: p_pi_mW, resistance_ohm, phase_offset_rad",
        ),
        ({"splitters": {"m": [0.5]}}, "splitters.m must be [kappa2_1, kappa2_2]"),
        (
            {"splitters": {"m": [0.5, 1.5]}},
            "splitters.m[1] is 1.5; allowed: a power coupling ratio in [0, 1]",
        ),
        ({"v_max_V": "high"}, "v_max_V is 'high'; allowed: a number > 0"),
    ],
)
def test_bad_calibrations_name_the_value(tmp_path, change, message):
    doc = {"format": "optinc-calibration", "version": 1, **change}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        cal.load_calibration(tmp_path / "c.json")
    assert str(info.value) == f"{str(tmp_path / 'c.json')!r}: {message}"


def test_crosstalk_naming_an_unknown_heater_is_rejected():
    c = cal.Calibration(crosstalk=(("nope", "L_U_c0_m0_theta", 0.01),))
    with pytest.raises(
        InputError,
        match=r"^calibration 'pdk-default' names 1 heater id\(s\) that the program does not have: 'nope'$",
    ):
        cal.heater_program(_program(2, 1), c)


@pytest.fixture
def program_file(tmp_path):
    program = compile_weights([NamedMatrix("fc1", haar(4, 6))], CompileOptions())
    return prog.save(program, tmp_path / "p.json")


def test_program_cli_writes_csv_and_a_loadable_json(program_file, tmp_path):
    runner = CliRunner()
    out = runner.invoke(
        main, ["program", str(program_file), "-o", str(tmp_path / "h.csv"), "--dac-bits", "10"]
    )
    assert out.exit_code == 0, out.output
    assert "fc1    16       " in out.stdout
    assert (
        out.stdout.splitlines()[-1]
        == "heaters: 16, total 285.6 mW, largest fc1_U_c1_m1_phi 48.1 mW at 4.91 V"
    )
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == (
        "# generator: optinc-compiler 0.1.0; calibration: pdk-default; dac_bits: 10; v_max_V: 10.0; "
        "rounding: nearest; crosstalk_compensated: True"
    )
    assert lines[1] == "id,pad,mzi,role,phase_rad,power_mW,voltage_V,dac_code"
    assert len(lines) == 2 + 16
    again = runner.invoke(
        main, ["program", str(program_file), "-o", str(tmp_path / "h2.csv"), "--dac-bits", "10"]
    )
    assert again.exit_code == 0
    assert (tmp_path / "h.csv").read_bytes() == (tmp_path / "h2.csv").read_bytes()
    assert (
        runner.invoke(main, ["program", str(program_file), "-o", str(tmp_path / "lab.json")]).exit_code == 0
    )
    doc = json.loads((tmp_path / "lab.json").read_text())
    assert doc["heater_program"]["dac_bits"] == 12
    assert len(doc["heaters"]) == 16
    assert set(doc["heaters"][0]) == {
        "id",
        "pad",
        "mzi",
        "role",
        "phase_rad",
        "power_mW",
        "voltage_V",
        "dac_code",
    }
    reloaded = prog.load(tmp_path / "lab.json")  # schema-valid, the same layers
    np.testing.assert_allclose(reloaded.layers[0].matrix(), prog.load(program_file).layers[0].matrix())


def test_program_cli_prints_the_total_power_and_the_largest_heater_on_stdout(tmp_path):
    out = CliRunner().invoke(main, ["program", str(DEMO), "-o", str(tmp_path / "h.csv")])
    assert out.exit_code == 0, out.output
    line = "heaters: 94, total 1,284.3 mW, largest onn1_U_c0_m0_phi 49.6 mW at 4.98 V"
    assert out.stdout.splitlines()[-1] == line
    assert line not in out.stderr
    assert "wrote " in out.stderr


def test_program_cli_errors(program_file, tmp_path):
    runner = CliRunner()
    bad_suffix = runner.invoke(main, ["program", str(program_file), "-o", str(tmp_path / "h.txt")])
    assert bad_suffix.exit_code == 2
    assert "allowed suffixes .csv and .json" in bad_suffix.output
    missing = runner.invoke(
        main, ["program", str(program_file), "-o", str(tmp_path / "h.csv"), "--calibration", "no.json"]
    )
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: calibration file 'no.json' does not exist"
    (tmp_path / "weak.json").write_text(
        json.dumps({"format": "optinc-calibration", "version": 1, "v_max_V": 1.0})
    )
    weak = runner.invoke(
        main,
        [
            "program",
            str(program_file),
            "-o",
            str(tmp_path / "h.csv"),
            "--calibration",
            str(tmp_path / "weak.json"),
        ],
    )
    assert weak.exit_code == 1
    assert "need more than v_max_V = 1.0 V" in weak.output
    assert not (tmp_path / "h.csv").exists()
    assert (
        runner.invoke(
            main, ["program", str(program_file), "-o", str(tmp_path / "h.csv"), "--dac-bits", "0"]
        ).exit_code
        == 2
    )


def test_program_cli_checks_pads_against_the_gds(program_file, tmp_path):
    pytest.importorskip("gdsfactory")
    runner = CliRunner()
    chip = tmp_path / "chip.gds"
    assert runner.invoke(main, ["layout", str(program_file), "-o", str(chip)]).exit_code == 0
    ok = runner.invoke(
        main, ["program", str(program_file), "-o", str(tmp_path / "h.csv"), "--gds", str(chip)]
    )
    assert ok.exit_code == 0, ok.output
    other = prog.save(
        compile_weights([NamedMatrix("fc2", haar(4, 7))], CompileOptions()), tmp_path / "q.json"
    )
    wrong = runner.invoke(main, ["program", str(other), "-o", str(tmp_path / "x.csv"), "--gds", str(chip)])
    assert wrong.exit_code == 3
    assert wrong.output.strip().endswith(
        f"Error: {str(chip)!r}: 16 heater(s) without a pad, 16 unused pad(s); "
        "heater 'fc2_U_c0_m0_phi' has no pad label"
    )


def test_realised_matrix_of_a_segmented_layer_is_its_netlist_at_those_phases():
    """Every heater counts, the fan chains' too: the realised matrix equals the netlist
    simulated (ideal models) with the same MZI and phase-shifter phases."""
    import dataclasses

    from optinc_compiler.netlist import layer_netlist
    from optinc_compiler.simulate import netlist_smatrix

    w = np.random.default_rng(5).normal(size=(5, 6))
    layer = compile_layer("s", w, CompileOptions(method="ud-segmented", block_size=4))
    netlist = layer_netlist(layer)
    rng = np.random.default_rng(6)
    phases, instances = {}, []
    for inst in netlist.instances:
        settings = dict(inst.settings)
        keys = {"mzi": ("theta_rad", "phi_rad"), "phase_shifter": ("phase_rad",)}.get(inst.component, ())
        for key in keys:
            settings[key] += 0.05 * rng.standard_normal()
            phases[f"{inst.name}_{key.removesuffix('_rad')}"] = settings[key]
        instances.append(dataclasses.replace(inst, settings=tuple(settings.items())))
    assert any(name.startswith(("s_FO", "s_FI")) for name in phases)
    moved = dataclasses.replace(netlist, instances=tuple(instances))
    simulated = netlist_smatrix(moved, n_in=6, n_out=5, model_set="ideal")[0]
    expected = layer.scale * 2 * simulated  # sqrt(R C), R = C = 2
    np.testing.assert_allclose(cal.realised_matrix(layer, phases), expected, atol=1e-12)
    np.testing.assert_allclose(cal.realised_matrix(layer, {}), layer.matrix(), atol=1e-12)


# --- hostile calibration files (issue 13) ---------------------------------------------


def _cal_json(tmp_path: Path, **doc) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"format": "optinc-calibration", "version": 1, **doc}))
    return path


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        (
            json.dumps({"format": "optinc-calibration", "version": 1, "name": "chip\nid,pad\nx,y"}),
            ".json",
            "calibration name 'chip\\nid,pad\\nx,y' holds a control character (newline, tab, ...)",
        ),
        ("[" * 50_000, ".json", "'{path}' nests deeper than a calibration does"),
        (
            '{"format": "optinc-calibration", "version": 1, '
            '"heaters": {"h": {"p_pi_mW": 20, "p_pi_mW": 30}}}',
            ".json",
            "'{path}': key 'p_pi_mW' appears twice in one object",
        ),
        (
            '{"format": "optinc-calibration", "version": ' + "9" * 5000 + "}",
            ".json",
            "'{path}': an integer of 5,000 digits; allowed: -2^63 .. 2^63 - 1",
        ),
        (
            "id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\nh,25,,,,\n# note\nh,30,,,,\n",
            ".csv",
            "c.csv line 4: id 'h' appears twice (first on line 2)",
        ),
        (
            "id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\nL_U_c0_m0_theta,25\n",
            ".csv",
            "c.csv line 2: 2 cells; a row has 6 (id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,"
            "kappa2_2)",
        ),
        (
            "id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\n" + "x," * 100_000 + "\n",
            ".csv",
            "c.csv line 2: 100001 cells; a row has 6 (id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,"
            "kappa2_2)",
        ),
        (
            "id,p_pi_mW,resistance_ohm,phase_offset_rad,kappa2_1,kappa2_2\nh," + "9" * 500 + "x,,,,\n",
            ".csv",
            "c.csv line 2, p_pi_mW is '" + "9" * 80 + "'...; allowed: a number",
        ),
    ],
)
def test_hostile_calibration_files_are_one_line(tmp_path, text, suffix, message):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message.format(path=path)) + "$"):
        cal.load_calibration(path)


def test_non_utf8_calibration_is_one_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"id\xff\n")
    with pytest.raises(InputError, match=re.escape(f"calibration file {str(path)!r} is not UTF-8 text")):
        cal.load_calibration(path)


@pytest.mark.parametrize("command", ["program", "verify"])
def test_unknown_ids_are_an_error_in_every_command(tmp_path, command):
    program = prog.save(_program(2, 1), tmp_path / "p.json")
    calibration = _cal_json(tmp_path, name="chip 7", heaters={"L_U_c0_m0_thetaa": {"p_pi_mW": 20}})
    out = ["-o", str(tmp_path / "h.csv")] if command == "program" else []
    result = CliRunner().invoke(main, [command, str(program), "--calibration", str(calibration), *out])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: calibration 'chip 7' names 1 heater id(s) that the program does not have: "
        "'L_U_c0_m0_thetaa'\n"
    )
    assert not (tmp_path / "h.csv").exists()


def test_a_crosstalk_with_no_non_negative_powers_names_the_calibration():
    """Two heaters that heat each other by 0.999999 of their own heat: no powers >= 0
    give both targets; the error says so and names the calibration."""
    w = np.array([[1.82675656, -3.07833191], [0.95806398, 0.06963723]])
    program = PhaseProgram(layers=(compile_layer("L", w, CompileOptions(method="svd")),))
    theta, phi = "L_V_c0_m0_theta", "L_V_c0_m0_phi"
    links = [
        {"victim": theta, "aggressor": phi, "coefficient": 0.999999},
        {"victim": phi, "aggressor": theta, "coefficient": 0.999999},
    ]
    doc = {"format": "optinc-calibration", "version": 1, "name": "chip 1", "crosstalk": links}
    calibration = cal.calibration_from_dict(doc, name="c.json")
    with pytest.raises(InputError) as info:
        cal.heater_program(program, calibration)
    assert str(info.value) == (
        "crosstalk compensation found no non-negative heater powers; check the crosstalk matrix "
        "(calibration 'chip 1')"
    )
