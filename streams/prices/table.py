"""OWNED BY the catalog helper: PriceTable, load_default_prices()."""

from __future__ import annotations


class PriceTable:
    pass


def load_default_prices() -> PriceTable:
    raise NotImplementedError
