"""Price snapshot (dated, with sources) and lookups."""
