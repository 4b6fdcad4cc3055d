"""How far a session read back from a DAW is from the session that was sent: static values and curves.

:func:`compare_sessions` is the one comparison of a round trip (``push --create``'s verification of the
saved Ardour session, and the round-trip tests): per schema path, the largest static error in the
parameter's own unit, and per automated path the largest curve error in **automation steps**: the curves
are compared on a 1 ms grid in the parameter's normalised scale (:meth:`~mixbridge.schema.Param.to_normalised`,
so log parameters compare in ratio) and the error is divided by the thinning step of the schedule a push
writes (:data:`~mixbridge.bridge.automation.DEFAULT_RESOLUTION` of the normalised range): a curve that
landed is within one step. Booleans (mute) compare their held value, except within one schedule period
(``1 / rate_hz``) of a change, where the 100 Hz schedule may place the edge.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mixbridge.schema import CHANNEL_STRIP, Param
from mixbridge.session import Automation, Session

from .automation import DEFAULT_RESOLUTION

#: Curve comparison grid, seconds.
GRID_S = 1e-3


@dataclass
class SessionDiff:
    """What :func:`compare_sessions` found.

    ``largest``: schema path -> (largest static error in its unit, track); ``curves``: schema path ->
    (largest curve error in automation steps, track); ``master``: master value -> error (dB);
    ``off``: every value or curve beyond the tolerances, in words; ``missing``: session tracks the
    read-back lacks; ``compared``: static values and curves compared.
    """

    largest: dict[str, tuple[float, str]] = field(default_factory=dict)
    curves: dict[str, tuple[float, str]] = field(default_factory=dict)
    master: dict[str, float] = field(default_factory=dict)
    off: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    compared: int = 0

    def summary(self) -> str:
        """One line: values and curves compared, how many are off, the largest static and curve errors."""
        worst = max(self.largest.items(), key=lambda kv: kv[1][0] / max(1.0, _scale(kv[0])), default=None)
        steps = max((v[0] for v in self.curves.values()), default=0.0)
        state = f"{len(self.off)} off" if self.off else "all within tolerance"
        text = (f"verify: read back {self.compared} values and curves from the saved session, {state}; "
                f"curves within {steps:.2f} automation steps")
        if worst is not None:
            text += f"; largest static error {worst[1][0]:.3g} on {worst[0]} ({worst[1][1]})"
        return text


def _scale(path: str) -> float:
    return abs(CHANNEL_STRIP.param(path).max)


def _value_at(curve: Automation | None, static: float, t: np.ndarray) -> np.ndarray:
    if curve is None:
        return np.full(t.shape, float(static))
    return np.interp(t, curve.times_s, curve.values)


def curve_error_steps(param: Param, want: Automation | None, want_static: float, got: Automation | None,
                      got_static: float, *, rate_hz: float = 100.0, resolution: float = DEFAULT_RESOLUTION) -> float:
    """The largest distance between two curves (a None curve is its static value) in automation steps
    (see the module docstring); booleans give 0 or 1."""
    spans = [c.times_s for c in (want, got) if c is not None]
    t0 = min(float(s[0]) for s in spans)
    t1 = max(float(s[-1]) for s in spans)
    t = np.arange(t0, t1 + GRID_S / 2, GRID_S)
    w = _value_at(want, want_static, t)
    g = _value_at(got, got_static, t)
    if param.kind == "bool":
        wb, gb = w >= 0.5, g >= 0.5
        near = np.zeros(t.shape, bool)
        period = 1.0 / rate_hz
        for i in np.flatnonzero(wb[1:] != wb[:-1]):
            near |= np.abs(t - t[i + 1]) <= period + GRID_S
        return float(np.any((wb != gb) & ~near))
    to_n = np.vectorize(lambda x: param.to_normalised(float(min(max(x, param.min), param.max))))
    return float(np.max(np.abs(to_n(w) - to_n(g)))) / resolution


def compare_sessions(want: Session, got: Session, *, paths: Iterable[str] | None = None,
                     static_rel: float = 1e-4, curve_steps: float = 1.0, rate_hz: float = 100.0,
                     resolution: float = DEFAULT_RESOLUTION, skip: Iterable[str] = (),
                     master: bool = True) -> SessionDiff:
    """Compare every track of ``want`` with the same-named track of ``got``.

    Args:
        paths: the schema paths to compare (default: all of the channel strip).
        static_rel: a static value is off beyond ``static_rel * max(1, |value|)`` in its unit.
        curve_steps: a curve is off beyond this many automation steps.
        skip: ``"<track>: <path>"`` entries not to compare (what a push listed as not sent).
        master: also compare the solved master gain and ``master.reverb.return_db``.
    """
    out = SessionDiff()
    skip = set(skip)
    chosen = list(paths) if paths is not None else [p for p, _ in CHANNEL_STRIP.flat_params()]
    by_name = {t.name: t for t in got.tracks}
    for wt in want.tracks:
        gt = by_name.get(wt.name)
        if gt is None:
            out.missing.append(wt.name)
            out.off.append(f"{wt.name}: not in the read-back session")
            continue
        for path in chosen:
            if f"{wt.name}: {path}" in skip:
                continue
            param = CHANNEL_STRIP.param(path)
            proc, name = path.split(".")
            wv, gv = float(wt.params[proc][name]), float(gt.params[proc][name])
            wc, gc = wt.automation.get(path), gt.automation.get(path)
            if wc is not None or gc is not None:
                steps = curve_error_steps(param, wc, wv, gc, gv, rate_hz=rate_hz, resolution=resolution)
                out.compared += 1
                if path not in out.curves or steps > out.curves[path][0]:
                    out.curves[path] = (steps, wt.name)
                if steps > curve_steps:
                    out.off.append(f"{wt.name}: automation {path} is {steps:.2f} automation steps from the session's")
                continue  # the static value under a curve is not compared: a read-back's is the curve's start
            err = abs(gv - wv) if not (math.isinf(gv) and gv == wv) else 0.0
            out.compared += 1
            if path not in out.largest or err > out.largest[path][0]:
                out.largest[path] = (err, wt.name)
            if err > static_rel * max(1.0, abs(wv)):
                unit = f" {param.unit}" if param.unit else ""
                out.off.append(f"{wt.name}: {path} reads back {gv:g}{unit}, the session has {wv:g}")
    if master:
        pairs: dict[str, tuple[float | None, float | None]] = {
            "master.solved_gain_db": (want.master.solved_gain_db, got.master.solved_gain_db),
            "master.reverb.return_db": (want.master.params["reverb"]["return_db"],
                                        got.master.params["reverb"]["return_db"])}
        for key, (mw, mg) in pairs.items():
            if mw is None:
                continue
            out.compared += 1
            if mg is None:
                out.off.append(f"{key}: not read back")
                continue
            out.master[key] = abs(mg - mw)
            if abs(mg - mw) > static_rel * max(1.0, abs(mw)):
                out.off.append(f"{key} reads back {mg:g} dB, the session has {mw:g} dB")
    return out
