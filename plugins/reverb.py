"""The reference reverb of the schema: exponentially decaying stereo noise, convolved (numpy/scipy).

What ``reverb.*`` means (``mixbridge.schema.REVERB_SEMANTICS``), rendered exactly:

* the send bus is summed to mono, ``(L + R) / sqrt(2)``, and feeds both outputs (a
  plate's topology: a source panned hard left still reverberates in both channels);
* the impulse response of output channel ``c`` is Gaussian noise from a fixed generator
  (``numpy.random.default_rng([REVERB_SEED, c])``, so the two channels are
  decorrelated and every render is identical) times the envelope
  ``exp(-3 ln(10) t / decay_s)``: its energy decays 60 dB in ``decay_s`` (the RT60,
  as Schroeder backward integration measures it);
* the response lasts ``IR_SPAN * decay_s`` (down 80 dB) and is scaled to unit energy
  (``sum h^2 = 1``), so for stationary noise, independent on the two send channels,
  the wet energy equals the send energy at ``return_db = 0`` whatever its spectrum (the
  response is flat on average), and so does its BS.1770-4 loudness, which the schema's
  wet level is defined by (a send with equal channels returns 3.01 dB more, as from a
  plate that sums its inputs);
* ``predelay_ms`` delays the onset by ``round(predelay_ms / 1000 * sample_rate)`` samples;
* broadband: no frequency-dependent damping (a real room's highs decay faster; this
  reverb is the measurable reference that the builtin backend renders and the torch
  console mirrors sample for sample).

The same noise (:func:`reverb_noise`) and envelope build the torch console's
response, so the two agree to float32 round-off. This is Moorer's (1979) and Jot's
exponentially-decaying-noise model of late reverberation.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import oaconvolve

from mixbridge.errors import AudioInputError

#: Seed of the impulse response's noise (fixed: a render is a pure function of its parameters).
REVERB_SEED = 0x6D6978
#: Length of the response in units of decay_s: 4/3 RT60 is 80 dB down.
IR_SPAN = 4.0 / 3.0
#: Energy decay rate: 60 dB per decay_s, i.e. amplitude exp(-3 ln 10 t / decay_s).
_DECAY_LN = 3.0 * math.log(10.0)


def ir_length(decay_s: float, sample_rate: int) -> int:
    """Samples in the impulse response for ``decay_s`` (before pre-delay)."""
    return max(1, int(math.ceil(IR_SPAN * float(decay_s) * sample_rate)))


def reverb_noise(channel: int, samples: int, seed: int = REVERB_SEED) -> np.ndarray:
    """The first ``samples`` values of channel ``channel``'s noise (a prefix of a longer draw is the same).

    ``seed`` other than :data:`REVERB_SEED` draws another realisation of the same noise model
    (the demastering generator varies its IR per example this way).
    """
    return np.random.default_rng([int(seed), int(channel)]).standard_normal(int(samples))


def delay_samples(predelay_ms: float, sample_rate: int) -> int:
    """Pre-delay in whole samples."""
    return int(round(float(predelay_ms) * 1e-3 * sample_rate))


def reverb_ir(sample_rate: int, *, decay_s: float, predelay_ms: float = 0.0, channels: int = 2,
              seed: int = REVERB_SEED) -> np.ndarray:
    """The unit-energy impulse response ``[channels, predelay + length]`` float64 (see the module docstring)."""
    n = ir_length(decay_s, sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    env = np.exp(-_DECAY_LN * t / float(decay_s))
    d = delay_samples(predelay_ms, sample_rate)
    ir = np.zeros((channels, d + n))
    for c in range(channels):
        h = reverb_noise(c, n, seed) * env
        ir[c, d:] = h / math.sqrt(float(np.dot(h, h)))
    return ir


def reverb(audio: np.ndarray, sample_rate: int, *, decay_s: float, predelay_ms: float, return_db: float,
           seed: int = REVERB_SEED) -> np.ndarray:
    """Wet-only stereo return of a send bus ``[channels, samples]`` (float32 ``[2, samples]``; the tail is cut).

    The send's channels are summed to mono (scaled by ``1/sqrt(channels)``), convolved with
    each channel of :func:`reverb_ir` and scaled by ``10^(return_db/20)``.

    Raises:
        AudioInputError: audio that is not 2-D (a ValueError).
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise AudioInputError(f"audio must be [channels, samples], got shape {audio.shape}")
    n = audio.shape[1]
    mono = audio.astype(np.float64).sum(axis=0, keepdims=True) / math.sqrt(audio.shape[0])
    ir = reverb_ir(sample_rate, decay_s=decay_s, predelay_ms=predelay_ms, channels=2, seed=seed)
    wet = oaconvolve(mono, ir, mode="full", axes=1)[:, :n]
    return (wet * 10.0 ** (return_db / 20.0)).astype(np.float32)
