"""_wire layer (private)."""
