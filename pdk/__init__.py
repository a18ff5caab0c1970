"""The OptINC process design kit (gdsfactory PDK and sax models).

Placeholder package until the layout issue lands: importing it has no side effects.
"""
