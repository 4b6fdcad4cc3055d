"""The one parameter schema of mixbridge (DESIGN.md §3, STYLE.md point 3).

Every processor parameter is defined here once: name (unit in the name), unit,
range, default, scale and its normalised mapping. The host, the models' output
heads, export metadata, DAW mappings and the data generator all derive from it.
The types (:class:`Param`, :class:`Processor`, :class:`Chain`) live in
:mod:`mixbridge.parameters`. This module imports nothing but the standard library.

Ranges and where they come from (DESIGN.md §2 anchors; the ``source`` field of
each parameter repeats this):

==========================  ===============  ==============================================
parameter                   range            anchor / reason
==========================  ===============  ==============================================
trim.gain_db                -24 .. +24 dB    pymixconsole gain
eq.*_gain_db                -12 .. +12 dB    Diff-MST EQ gain (pymixconsole's +-24 is extreme)
eq.low_shelf_freq_hz        20 .. 1000 Hz    pymixconsole low shelf
eq.peak1_freq_hz            200 .. 5000 Hz   pymixconsole band 1
eq.peak2_freq_hz            500 .. 6000 Hz   pymixconsole band 2
eq.peak3_freq_hz            2000 .. 10000    pymixconsole band 3
eq.high_shelf_freq_hz       2000 .. 14000    pymixconsole's 8-20 kHz widened down for presence
                                             shelving, capped at ZamEQ2's 14 kHz maximum
eq.peak*_q                  0.2 .. 10        pymixconsole Q 0.1-10, floor raised to 0.2 because
                                             ZamEQ2's widest band (6 octaves) is Q 0.13
compressor.threshold_db     -60 .. 0 dB      pymixconsole and Diff-MST
compressor.ratio            1 .. 20          pymixconsole/Diff-MST 1-10 extended to ZamComp's 20
                                             (limiting-style ratios on drums)
compressor.attack_ms        0.1 .. 100 ms    union of pymixconsole (0.03-30) and Diff-MST
                                             (5-250), clipped to ZamComp's 0.1-100 ms
compressor.release_ms       10 .. 500 ms     Diff-MST 10-250 extended to ZamComp's 500 ms
compressor.knee_db          0 .. 8 dB        Diff-MST 3-12, clipped to ZamComp's 0-8 dB
compressor.makeup_db        0 .. 12 dB       Diff-MST 0-6 / pymixconsole +-12
send.send_db                -80 .. +6 dB     Diff-MST FX send -80..12; -80 dB means off
fader.fader_db              -48 .. +12 dB    Diff-MST -48..48, top capped at +12 dB like a
                                             console fader (Ardour clamps at +6 dB)
pan.pan                     -1 .. +1         -1 left, 0 centre, +1 right (pymixconsole's 0..1
                                             rescaled); constant-power law
limiter.ceiling_dbtp        -6 .. 0 dBTP     streaming default -1 dBTP
loudness.target_lufs        -30 .. -6 LUFS   -14 streaming, -23 EBU R128
==========================  ===============  ==============================================
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from .errors import UnknownNameError
from .parameters import Chain, Param, Processor

# --------------------------------------------------------------------------- params
_PYMIX = "pymixconsole defaults (DESIGN.md §2)"
_DMST = "Diff-MST console (DESIGN.md §2)"


def _eq_params() -> tuple[Param, ...]:
    def gain(name: str, label: str) -> Param:
        return Param(name, "dB", -12.0, 12.0, 0.0, "db", description=f"{label} gain", source=_DMST)

    def q(name: str) -> Param:
        return Param(name, "", 0.2, 10.0, 0.707, "log", description="peaking band Q (RBJ)",
                     source=_PYMIX + "; floor 0.2 = ZamEQ2's widest band")

    return (
        gain("low_shelf_gain_db", "low shelf"),
        Param("low_shelf_freq_hz", "Hz", 20.0, 1000.0, 100.0, "log", description="low shelf corner", source=_PYMIX),
        gain("peak1_gain_db", "peaking band 1"),
        Param("peak1_freq_hz", "Hz", 200.0, 5000.0, 400.0, "log", source=_PYMIX),
        q("peak1_q"),
        gain("peak2_gain_db", "peaking band 2"),
        Param("peak2_freq_hz", "Hz", 500.0, 6000.0, 1500.0, "log", source=_PYMIX),
        q("peak2_q"),
        gain("peak3_gain_db", "peaking band 3"),
        Param("peak3_freq_hz", "Hz", 2000.0, 10000.0, 5000.0, "log", source=_PYMIX),
        q("peak3_q"),
        gain("high_shelf_gain_db", "high shelf"),
        Param("high_shelf_freq_hz", "Hz", 2000.0, 14000.0, 8000.0, "log", description="high shelf corner",
              source=_PYMIX + " widened down; capped at ZamEQ2's 14 kHz"),
    )


#: Shelf slope of the schema's EQ: RBJ cookbook shelves in the slope form with
#: S = 1/sqrt(2), the design ZamEQ2 uses (measured within 1e-4 dB); the builtin
#: backend reproduces it exactly through :func:`shelf_q`.
SHELF_SLOPE = 0.7071067811865476


def shelf_q(gain_db: float, slope: float = SHELF_SLOPE) -> float:
    """The Q-form equivalent of an RBJ shelf of slope ``slope`` at ``gain_db``.

    RBJ Audio EQ Cookbook: alpha = sin(w0)/2 * sqrt((A + 1/A)(1/S - 1) + 2) for a
    shelf of slope S, and alpha = sin(w0)/(2Q) in the Q form, so
    Q = 1 / sqrt((A + 1/A)(1/S - 1) + 2) with A = 10^(gain_db/40).
    """
    a = 10.0 ** (gain_db / 40.0)
    return 1.0 / math.sqrt((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0)

TRIM = Processor("trim", (Param("gain_db", "dB", -24.0, 24.0, 0.0, "db", description="input trim", source=_PYMIX),))
POLARITY = Processor("polarity", (Param("invert", "", 0.0, 1.0, 0.0, kind="bool", description="1 flips polarity"),))
EQ = Processor("eq", _eq_params(), "RBJ low shelf, three peaking bands, high shelf")
COMPRESSOR = Processor(
    "compressor",
    (
        Param("threshold_db", "dB", -60.0, 0.0, 0.0, "db",
              description="centre of the knee, in dBFS of the detector level (see COMPRESSOR_SEMANTICS)",
              source=_PYMIX + " / " + _DMST),
        Param("ratio", "", 1.0, 20.0, 1.0, "log",
              description="static slope above the knee: output rises 1 dB per `ratio` dB of input; 1 is the identity",
              source="1-10 anchors extended to ZamComp's 20"),
        Param("attack_ms", "ms", 0.1, 100.0, 10.0, "log",
              description="63 % time constant of the gain-reduction step response when the reduction grows",
              source="anchors clipped to ZamComp 0.1-100 ms"),
        Param("release_ms", "ms", 10.0, 500.0, 100.0, "log",
              description="63 % time constant of the gain-reduction step response when the reduction falls",
              source=_DMST + " extended to ZamComp 500 ms"),
        Param("knee_db", "dB", 0.0, 8.0, 0.0, "db",
              description="full width of the quadratic soft knee centred on threshold_db "
                          "(Giannoulis et al. 2012, eq. 4)",
              source=_DMST + " clipped to ZamComp 0-8 dB"),
        Param("makeup_db", "dB", 0.0, 12.0, 0.0, "db", description="gain after the compressor",
              source=_DMST + " / " + _PYMIX),
    ),
    "feed-forward compressor; its meaning is pinned in COMPRESSOR_SEMANTICS",
)

#: What every compressor implementation must render (the semantic contract measures it:
#: :mod:`mixbridge.plugins.contract`). Source: D. Giannoulis, M. Massberg, J. D. Reiss,
#: "Digital Dynamic Range Compressor Design -- A Tutorial and Analysis", JAES 60(6), 2012.
COMPRESSOR_SEMANTICS = (
    "Feed-forward. Detector: the per-sample peak level 20 log10 max_c |x_c[n]| over the channels "
    "(stereo-linked: one gain for all channels, on the strip and on the master bus alike). "
    "Gain computer: quadratic soft knee of full width knee_db centred on threshold_db (eq. 4), hard "
    "knee at 0 dB; ratio 1 is the identity. Ballistics act on the gain reduction in dB (eq. 17, "
    "smooth decoupled peak detector): attack_ms and release_ms are the 63 % time constants of the "
    "gain-reduction step response (a level step that raises the static reduction reaches 63 % of "
    "its final reduction after attack_ms; one that removes it falls to 37 % after release_ms, "
    "within the contract's tolerance for release_ms >= 4 attack_ms). makeup_db is applied after."
)
SEND = Processor("send", (Param("send_db", "dB", -80.0, 6.0, -80.0, "db",
                                description="post-fader send to the reverb bus; -80 dB is off", source=_DMST),))
FADER = Processor(
    "fader",
    (
        Param("fader_db", "dB", -48.0, 12.0, 0.0, "db", source=_DMST + " capped at +12 dB"),
        Param("mute", "", 0.0, 1.0, 0.0, kind="bool", description="1 mutes the track"),
    ),
)
PAN = Processor("pan", (Param("pan", "", -1.0, 1.0, 0.0,
                              description="-1 left, 0 centre, +1 right; one constant-power law for mono and stereo "
                                          "tracks (PAN_SEMANTICS)", source=_PYMIX + " rescaled"),))

REVERB = Processor(
    "reverb",
    (
        Param("decay_s", "s", 0.3, 8.0, 1.2, "log",
              description="RT60 of the reverb return: the time its energy decay curve (Schroeder) takes to fall 60 dB"),
        Param("predelay_ms", "ms", 0.0, 100.0, 10.0, description="delay of the return's onset after the send"),
        Param("return_db", "dB", -60.0, 6.0, 0.0, "db",
              description="return level: at 0 dB the return is as loud (BS.1770-4) as the send bus for "
                          "stationary pink noise"),
    ),
    "shared reverb bus fed by every track's send; its meaning is pinned in REVERB_SEMANTICS",
)

#: What every reverb implementation must render (measured by :mod:`mixbridge.plugins.contract`).
REVERB_SEMANTICS = (
    "Wet only (the dry signal is in the mix already); the stereo send bus feeds both return channels "
    "(mono sum in, decorrelated stereo out, like a plate). decay_s is the broadband RT60 of the return, "
    "measured by Schroeder backward integration of its impulse response (T20 extrapolated to 60 dB; "
    "ISO 3382-1). Wet level: the return's loudness over the send bus's loudness (BS.1770-4, K-weighted), "
    "for stationary pink noise independent on the two send channels, is return_db (a send with equal "
    "channels returns 3.01 dB more); "
    "send_db sets each track's contribution to the bus, post-fader and post-pan."
)
LIMITER = Processor(
    "limiter",
    (
        Param("ceiling_dbtp", "dBTP", -6.0, 0.0, -1.0, "db",
              description="true-peak ceiling: the output's true peak (ITU-R BS.1770-4 Annex 2, 4x oversampling) "
                          "never exceeds it"),
        Param("release_ms", "ms", 1.0, 100.0, 50.0, "log",
              description="63 % time constant of the limiter's gain recovery", source="ZaMaximX2 range"),
    ),
    "look-ahead true-peak limiter",
)
LOUDNESS = Processor(
    "loudness",
    (Param("target_lufs", "LUFS", -30.0, -6.0, -14.0, description="integrated loudness target (ITU-R BS.1770-4)"),),
)
#: Largest master gain the one gain solver applies before the limiter, in dB.
MAX_MASTER_GAIN_DB = 36.0
#: The master bus's gain stage: not a user parameter of ``master_bus`` but the value the one
#: gain solver (:func:`mixbridge.plugins.mastering.solve_master_gain`) finds for
#: ``loudness.target_lufs``; a session stores it once (``master.solved_gain_db``) and every path
#: that renders the master (builtin, vst, the live bus) applies it.
GAIN = Processor(
    "gain",
    (Param("gain_db", "dB", -MAX_MASTER_GAIN_DB, MAX_MASTER_GAIN_DB, 0.0, "db",
           description="master gain before the limiter (the solved gain to the loudness target)"),),
    "master gain stage of the one master bus",
)

#: Pan of a track. Mono track: constant power, L = cos(theta), R = sin(theta),
#: theta = (pan + 1) pi / 4 (-3.01 dB each side at the centre). Stereo track: constant-power
#: balance, L_out = sqrt(2) cos(theta) L_in, R_out = sqrt(2) sin(theta) R_in (unity at the
#: centre), so a stereo stem whose channels are equal sits exactly where a mono stem with the
#: same pan sits, at the same power; mixers choose ``pan`` with this one law for both.
PAN_SEMANTICS = (
    "mono: L = cos(theta), R = sin(theta), theta = (pan + 1) pi / 4; stereo: constant-power balance "
    "L = sqrt(2) cos(theta) L_in, R = sqrt(2) sin(theta) R_in (unity at centre): the image of a "
    "centred stereo stem moves exactly as a mono stem with the same pan"
)

CHANNEL_STRIP = Chain(
    "channel_strip",
    (TRIM, POLARITY, EQ, COMPRESSOR, SEND, FADER, PAN),
    "per-track strip: trim -> polarity -> EQ -> compressor -> fader -> pan, send post-fader",
)
MASTER_BUS = Chain(
    "master_bus",
    (EQ, COMPRESSOR, REVERB, LIMITER, LOUDNESS),
    "reverb return joins the stereo sum, then EQ -> bus compressor -> gain to target -> true-peak limiter",
)

#: The one master bus as it renders (offline, live and in torch): the ``master_bus`` chain's
#: processors after the reverb return joins the sum, with the solved gain stage.
MASTER_RENDER = Chain("master_render", (EQ, COMPRESSOR, GAIN, LIMITER),
                      "EQ -> bus compressor -> solved gain -> true-peak look-ahead limiter")

CHAINS: dict[str, Chain] = {c.name: c for c in (CHANNEL_STRIP, MASTER_BUS)}


def flatten_params(params: Mapping) -> dict:
    """``{"processor": {"param": v}}`` and/or ``{"processor.param": v}`` as one flat ``{"processor.param": v}``."""
    flat: dict = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def get_chain(name: str) -> Chain:
    """Return a chain by name.

    Raises:
        UnknownNameError: the name is not a known chain; the message lists them.
    """
    try:
        return CHAINS[name]
    except KeyError:
        raise UnknownNameError(f"unknown chain '{name}'; known chains: {', '.join(CHAINS)}") from None


def schema_dict() -> dict:
    """The whole schema as plain JSON-able data (for export sidecars and docs)."""
    return {
        chain.name: {
            proc.name: {
                p.name: {
                    "unit": p.unit, "min": p.min, "max": p.max, "default": p.default,
                    "scale": p.scale, "kind": p.kind,
                }
                for p in proc.params
            }
            for proc in chain.processors
        }
        for chain in CHAINS.values()
    }


# --------------------------------------------------------------------------- demastering degradations
# Added for ``mixbridge datagen demaster --mode dsp`` (plugins/datagen/demaster.py). These are not
# console processors: they degrade a finished master so that a model learns to undo them. They get
# their own processor names so that no parameter name means two things (``compressor.threshold_db``
# is the console's compressor over -60..0 dB; ``demaster_compressor.threshold_db`` degrades masters
# over -40..-5 dB). Not in ``CHAINS``: no model head, export sidecar or DAW mapping uses them; the
# generator reads ``DEMASTER`` directly.
_KHOO = "Khoo's demastering recipe (DESIGN.md §2)"

DEMASTER_EQ = Processor(
    "demaster_eq",
    (
        Param("centre_hz", "Hz", 60.0, 12000.0, 1000.0, "log", description="centre of the bell", source=_KHOO),
        Param("q", "", 0.5, 4.0, 1.0, "log",
              description="width: the bell's full width at half maximum, in octaves, is the RBJ bandwidth of "
                          "this Q, 2 asinh(1/(2q))/ln 2", source=_KHOO),
        Param("gain_db", "dB", -12.0, 12.0, 0.0, "db", description="gain at the centre", source=_KHOO),
    ),
    "a Gaussian bell in log-frequency applied to every STFT frame (Hann, 2048, hop 512); not an RBJ peaking "
    "filter",
)
DEMASTER_COMPRESSOR = Processor(
    "demaster_compressor",
    (
        Param("threshold_db", "dB", -40.0, -5.0, -20.0, "db", description="centre of the knee, dBFS", source=_KHOO),
        Param("ratio", "", 1.5, 10.0, 4.0, "log", description="static slope above the knee", source=_KHOO),
        Param("knee_db", "dB", 0.0, 12.0, 6.0, "db", description="full width of the quadratic soft knee",
              source=_KHOO),
        Param("attack_ms", "ms", 1.0, 50.0, 10.0, "log",
              description="63 % time constant of the gain-reduction step response (reduction growing)", source=_KHOO),
        Param("release_ms", "ms", 20.0, 500.0, 100.0, "log",
              description="63 % time constant of the gain-reduction step response (reduction falling)",
              source=_KHOO),
        Param("makeup_db", "dB", 0.0, 12.0, 0.0, "db", description="gain after the compressor", source=_KHOO),
    ),
    "the console compressor's meaning exactly (COMPRESSOR_SEMANTICS; rendered by "
    "mixbridge.plugins.dynamics.compress) over ranges that degrade a master",
)
DEMASTER_REVERB = Processor(
    "demaster_reverb",
    (
        Param("decay_s", "s", 0.2, 3.0, 1.0, "log", description="RT60 of the added reverb (as reverb.decay_s)",
              source=_KHOO),
        Param("return_db", "dB", -30.0, -6.0, -18.0, "db",
              description="wet level: wet energy over dry energy for stationary white noise independent on the two "
                          "channels (as reverb.return_db)",
              source=_KHOO),
    ),
    "the reference reverb (REVERB_SEMANTICS; mixbridge.plugins.reverb, no pre-delay) as an insert: dry + wet, "
    "with a noise realisation drawn per example",
)
DEMASTER_ECHO = Processor(
    "demaster_echo",
    (
        Param("delay_ms", "ms", 50.0, 500.0, 200.0, "log", description="delay of the copy, rounded to whole samples",
              source=_KHOO),
        Param("gain_db", "dB", -24.0, -6.0, -12.0, "db", description="level of the copy", source=_KHOO),
    ),
    "dry + one delayed, attenuated copy",
)
#: The degradations in the order they are applied (each with its own probability).
DEMASTER = Chain(
    "demaster",
    (DEMASTER_EQ, DEMASTER_COMPRESSOR, DEMASTER_REVERB, DEMASTER_ECHO),
    "demastering degradations: bell EQ -> compressor -> reverb -> echo, each stage applied with its own probability",
)
