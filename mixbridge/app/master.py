"""``mixbridge master IN.wav -o OUT_DIR``: master a finished stereo mix (issue 13; being built).

The handler parses, calls one library function and prints its result (STYLE.md point 12).
"""
from __future__ import annotations


def register(sub) -> None:
    """Add ``master`` to the top CLI's subparsers ``sub`` (nothing until the command lands)."""
    return None
