"""The listening page's per-listener shuffle in Python, bit-exact with ``listen.js``.

The page shuffles the trial order and then each trial's condition order (Fisher-Yates from the end) with
Tommy Ettinger's Mulberry32 generator seeded by FNV-1a (32 bit) of ``"<page seed>:<listener id>"``;
:func:`listener_orders` repeats it, so a test (or an experimenter) can re-derive from ``config.json`` what a
listener was shown, and check it against what the submission recorded.
"""
from __future__ import annotations


def listener_seed(page_seed: int, listener: str) -> int:
    """The 32-bit seed of a listener's orders: FNV-1a (32 bit) of ``"<page_seed>:<listener>"``'s UTF-16
    code units, as ``listen.js`` computes it."""
    h = 0x811C9DC5
    text = f"{int(page_seed)}:{listener}"
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _mulberry32(seed: int):
    """Tommy Ettinger's Mulberry32 generator (public domain), bit-exact with ``listen.js``: floats in [0, 1)."""
    state = seed & 0xFFFFFFFF

    def imul(a: int, b: int) -> int:
        return (a * b) & 0xFFFFFFFF

    def nxt() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = imul(state ^ (state >> 15), state | 1)
        t = ((t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF) ^ t
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0

    return nxt


def _shuffle(values: list, rand) -> list:
    """Fisher-Yates from the end, as ``listen.js``'s ``shuffle``."""
    out = list(values)
    for i in range(len(out) - 1, 0, -1):
        j = int(rand() * (i + 1))
        out[i], out[j] = out[j], out[i]
    return out


def listener_orders(config: dict, listener: str) -> tuple[list[str], dict[str, list[str]]]:
    """The trial order (item names) and each trial's condition order a listener gets from a page's
    ``config.json`` (the shuffle ``listen.js`` runs: items first, then each trial's conditions in trial order)."""
    rand = _mulberry32(listener_seed(config["seed"], listener))
    items = _shuffle([i["name"] for i in config["items"]], rand)
    names = [c["name"] for c in config["conditions"]]
    return items, {item: _shuffle(names, rand) for item in items}


__all__ = ["listener_orders", "listener_seed"]
