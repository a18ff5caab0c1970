"""CORNERSTONE SOI 220 nm (cspdk 2.1): the numbers our flow uses, as plain data.

Nothing here imports gdsfactory or cspdk. Sources:

* layers: ``cspdk.si220.tech.LAYER`` and ``cspdk.si220.submission.DESIGNATED_LAYERS``
  (CORNERSTONE 50th-call design guideline, section 5.2 and Table 6);
* rules: ``cspdk/model/constraints.json`` (silicon etch widths and spaces),
  ``cspdk.si220.tech.TECH.gap_min`` / ``grating_gap_min``, and the guideline's heater
  and pad rules (HEATER width >= 0.6 um, space >= 10 um; PAD width >= 2 um, space >=
  10 um; heater-pad overlap >= 10 um);
* die: ``cspdk.si220.cells.die_with_pads`` (the Run-50 full packaging template);
* heater: the PDK states no resistance (``info['resistance'] = 0``) and a placeholder
  ``vpi`` of 1 V, so the electrical model below is an assumption, named in every report;
  a calibration file (``optinc program --calibration``) replaces it.
"""

from __future__ import annotations

from optinc_compiler.pdks import Die, HeaterModel, PdkInfo

NAME = "cornerstone-si220"

#: GDS (layer, datatype) by the names of ``cspdk.si220.tech.LAYER``; the layers we draw.
LAYERS: dict[str, tuple[int, int]] = {
    "WG": (3, 0),  # Silicon Etch 2, light field (waveguides)
    "GRA": (6, 0),  # Silicon Etch 1 (grating couplers)
    "HEATER": (39, 0),  # TiN heater filaments
    "PAD": (41, 0),  # Ti/Al heater contacts, wires and pads (the only metal)
    "FLOORPLAN": (99, 0),  # cell outline
    "LBL": (100, 0),  # labels
}

#: Design rules in um: ``<layer>.width`` / ``<layer>.space`` minimums and the overlap of
#: heater and pad metal at each heater contact.
RULES: dict[str, float] = {
    "WG.width": 0.35,
    "WG.space": 0.20,
    "GRA.width": 0.20,
    "GRA.space": 0.25,
    "HEATER.width": 0.6,
    "HEATER.space": 10.0,
    "PAD.width": 2.0,
    "PAD.space": 10.0,
    "HEATER.PAD.overlap": 10.0,
}
#: Width checks allow this much below the minimum: curves are discretised on the 1 nm grid.
WIDTH_TOLERANCE_UM = 0.002

#: The foundry's top-cell rule: ``Cell0_<Name of Institution>``; ``--institution`` sets it.
INSTITUTION = "OptINC"
TOP_CELL = f"Cell0_{INSTITUTION}"

# --- the die: cspdk.si220.cells.die_with_pads() defaults ------------------------------
DIE_SIZE_UM = (11_470.0, 4_900.0)
PADS_PER_SIDE = 31
PAD_PITCH_UM = 300.0
PAD_SIZE_UM = (150.0, 200.0)
PAD_ROW_X0_UM = -115.0  # x of the pad rows' centre
PAD_EDGE_UM = 50.0  # die edge to the pads
GRATINGS_PER_SIDE = 16  # the outermost two of each side form the loopback
GRATING_PITCH_UM = 250.0
#: |x| of the gratings' waveguide ports (``die_with_pads``: half the die, less 420 um
#: and the grating's length); ``chip`` checks it against the drawn die.
GRATING_PORT_X_UM = 4_923.0

# --- our cells from the foundry's cells ------------------------------------------------
#: Row pitch of the meshes: the couplers' S-bends bring two rows to the coupler's 4 um.
ROW_PITCH_UM = 60.0
#: Heated length of every phase shifter (``straight_heater_metal``).
HEATER_LENGTH_UM = 200.0
#: Plain waveguide on each side of a heater in its slot: the heater's contacts reach
#: 24.9 um beyond the heated length, and neighbouring slots keep HEATER / PAD space.
SLOT_MARGIN_UM = 30.0
#: x length of each S-bend between the row pitch and the coupler.
COUPLER_BEND_DX_UM = 60.0
#: An attenuator is an MZI inside one row: its dark (lower) arm runs this far below the
#: row, halfway to the next row (the heaters' metal reaches 5 um from the waveguide).
ATTENUATOR_ARM_PITCH_UM = ROW_PITCH_UM / 2

# --- the terminator (cspdk has none): the foundry's taper and bends, within its rules --
#: The taper from the strip width (0.45 um) down to the narrowest waveguide the rules
#: allow (``WG.width``; gdsfactory's 0.2 um terminator tip is below it) ...
TERMINATOR_TAPER_UM = 20.0
TERMINATOR_WIDTH_UM = 0.35
#: ... then a curl of quarter circles tightening to 1.4 um radius, where the weakly
#: guided 0.35 um mode radiates into the substrate and cladding, and a 0.5 um straight
#: so the tip's corners are square. An assumption like the heater model: the foundry
#: states no terminator, so its return loss is not measured.
TERMINATOR_RADII_UM = (6.0, 5.0, 4.0, 3.2, 2.6, 2.1, 1.7, 1.4)
TERMINATOR_TIP_UM = 0.5
#: Wires on PAD: width and centre-to-centre pitch (width + the 10 um space).
WIRE_WIDTH_UM = 10.0
WIRE_PITCH_UM = 20.0
#: How far the wires reach into a die pad (the guideline's 10 um overlap, and margin).
PAD_OVERLAP_UM = 20.0
#: Design wavelength (C band, the PDK's ``strip_cband``).
WL_UM = 1.55

HEATER = HeaterModel(
    p_pi_mW=25.0,
    resistance_ohm=800.0,
    v_max_V=10.0,
    length_um=HEATER_LENGTH_UM,
    source=(
        "assumed: cspdk 2.1 states no heater resistance or P_pi; P_pi = 25 mW is typical of "
        "TiN heaters over 220 nm SOI strips without undercut, R = 10 ohm/sq x 200 um / 2.5 um "
        "= 800 ohm; replace both with a calibration file"
    ),
)

INFO = PdkInfo(
    name=NAME,
    title="CORNERSTONE SOI 220 nm (cspdk 2.1): the foundry's cells, layers and MPW die",
    modules=("cspdk", "h5netcdf", "h5py"),
    install="pip install --no-deps cspdk==2.1.0 h5netcdf h5py",
    roles={
        "coupler": "coupler (50:50 length solved from the foundry's model)",
        "theta/phi heater": "straight_heater_metal",
        "output phase shifter": "straight_heater_metal",
        "bypass": "straight and bend_s, path length matched to the MZI arms",
        "attenuator": "an MZI of the foundry's couplers and heaters inside one row, dark arm terminated",
        "crossing": "crossing (not used: segmented grids and permutations need --pdk optinc)",
        "grating coupler": "grating_coupler_rectangular (in die_with_pads)",
        "edge coupler": "none",
        "terminator": "ours: the foundry's taper to 0.35 um and a tightening curl of its bends",
        "pad": "pad (in die_with_pads)",
        "die": "die_with_pads (Run-50 full packaging template)",
    },
    layers=LAYERS,
    rules=RULES,
    die=Die(
        size_um=DIE_SIZE_UM,
        pads=2 * PADS_PER_SIDE,
        pad_pitch_um=PAD_PITCH_UM,
        pad_size_um=PAD_SIZE_UM,
        io_ports=2 * (GRATINGS_PER_SIDE - 2),
        metals=1,
    ),
    heater=HEATER,
    notes=(
        "one metal (PAD) and no via: heater wiring is planar",
        "one layer per die, unsegmented (no crossings); svd and ud layers with attenuators",
        f"top cell {TOP_CELL} (the guideline's Cell0_<Institution>)",
    ),
)
