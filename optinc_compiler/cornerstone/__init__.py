"""The flow on CORNERSTONE's SOI 220 nm process through its gdsfactory PDK (cspdk).

``tech`` holds the numbers (plain data); ``cells`` builds our mesh cells from the
foundry's cells; ``models`` the fast-path sax models from the foundry's models;
``chip`` places the mesh on the foundry's MPW die and routes the heaters on its one
metal; ``drc`` checks the foundry's rules and runs its submission check; ``lvs``
extracts the drawn mesh and wiring. Only ``tech`` may be imported without cspdk.
"""
