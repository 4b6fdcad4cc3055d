"""Loudness and true-peak measurement (ITU-R BS.1770-4), on whole signals or block by block.

* Integrated loudness in LUFS: pyloudnorm's BS.1770-4 algorithm (its own K-weighting stages,
  400 ms blocks with 75 % overlap, -70 LUFS absolute and -10 LU relative gates), run by
  :class:`LoudnessMeter` block by block with the filter state carried, so an hour-long mix is
  measured without the whole-signal float64 copies pyloudnorm makes (7.6 GB for 60 min of stereo).
  Only the summation order of a gating block's mean square differs from
  ``pyloudnorm.Meter.integrated_loudness`` (:data:`LOUDNESS_STREAM_TOLERANCE_LU`; a test checks it).
* True peak in dBTP: BS.1770-4 Annex 2 -- oversample by 4 with a band-limited
  interpolation filter (scipy's polyphase FIR), take the absolute maximum; :class:`TruePeakMeter`
  gives the same peak block by block. pyloudnorm has no true-peak meter.

:func:`integrated_lufs` and :func:`true_peak_dbtp` take a whole ``[channels, samples]`` array and
run the two meters over it in :data:`MEASURE_BLOCK`-frame blocks; :func:`integrated_lufs_blocks`
takes any iterable of blocks (a stem read from disk).
"""
from __future__ import annotations

import math

import numpy as np

#: Oversampling factor of the true-peak meter (BS.1770-4 Annex 2 asks for >= 4x at 48 kHz).
TRUE_PEAK_OVERSAMPLING = 4
#: Loudness reported for signals that the gates remove entirely.
SILENT_LUFS = -70.0


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS of ``[channels, samples]`` audio (BS.1770-4, pyloudnorm's algorithm,
    measured block by block by :class:`LoudnessMeter`; 1..5 channels in BS.1770 order).

    Signals shorter than one 400 ms block, or gated out entirely, return
    ``SILENT_LUFS`` (-70 LUFS, the absolute gate). ``audio`` may also be a
    :class:`mixbridge.audio.WavArray` (a signal on disk, read block by block).
    """
    audio = _as_signal(audio)
    return integrated_lufs_blocks(_chunks(audio, MEASURE_BLOCK), sample_rate, audio.shape[0])


#: Half length of the true-peak interpolation filter in input samples (scipy ``resample_poly``'s
#: default for up = 4: 10 * 4 taps each side, Kaiser beta 5).
TRUE_PEAK_HALF_TAPS = 10 * TRUE_PEAK_OVERSAMPLING
TRUE_PEAK_KAISER_BETA = 5.0


def true_peak_interpolation_filter() -> np.ndarray:
    """The 4x interpolation filter of the true-peak meter, 81 taps (BS.1770-4 Annex 2).

    ``firwin(81, 1/4, window=("kaiser", 5.0)) * 4``: scipy ``resample_poly``'s default for
    up = 4. The meter (:func:`true_peak_dbtp`) and the master bus's limiter detector
    (:mod:`mixbridge.plugins.master_bus`) both use it.
    """
    from scipy.signal import firwin

    return firwin(2 * TRUE_PEAK_HALF_TAPS + 1, 1.0 / TRUE_PEAK_OVERSAMPLING,
                  window=("kaiser", TRUE_PEAK_KAISER_BETA)) * TRUE_PEAK_OVERSAMPLING


def true_peak_dbtp(audio: np.ndarray, sample_rate: int | None = None) -> float:
    """True peak in dBTP of ``[channels, samples]`` audio (BS.1770-4 Annex 2, 4x oversampling).

    The signal is upsampled 4x with :func:`true_peak_interpolation_filter` (the same output
    samples as ``scipy.signal.resample_poly(audio, 4, 1)``, computed as four 21-tap polyphase
    convolutions per channel, block by block by :class:`TruePeakMeter`; phase 0 too, since firwin's
    DC scaling makes it 1.0006 times the samples; a test checks both agree) and the largest
    magnitude of it and of the samples is reported. ``sample_rate`` is accepted for symmetry; the
    factor is fixed at 4 as the recommendation specifies for 48 kHz (a conservative choice at
    44.1 kHz). Returns -inf for digital silence. ``audio`` may also be a
    :class:`mixbridge.audio.WavArray` (read block by block).
    """
    audio = _as_signal(audio)
    if audio.size == 0:
        return float("-inf")
    if isinstance(audio, np.ndarray):
        audio = audio.reshape(-1, audio.shape[-1])
    meter = TruePeakMeter(audio.shape[0])
    for b in _chunks(audio, MEASURE_BLOCK):
        meter.update(b)
    return meter.true_peak_dbtp()


def db_to_gain(gain_db: float | np.ndarray) -> np.ndarray:
    """Amplitude gain of a level in dB, ``10^(dB / 20)``, as a float64 array of the input's shape
    (0-d for a scalar). -6.02 dB halves the amplitude; -inf dB gives 0. The numpy console
    (:mod:`mixbridge.plugins.console`) applies trims, faders and sends with it; the torch console
    has its own differentiable twin (:func:`mixbridge.models.dsp.db_to_gain`)."""
    return np.power(10.0, np.asarray(gain_db, dtype=np.float64) / 20.0)


#: Agreement of :class:`LoudnessMeter` with pyloudnorm's ``Meter.integrated_loudness``, LU: only the
#: summation order of each block's mean square differs (float64 relative error ~1e-15 per sum).
LOUDNESS_STREAM_TOLERANCE_LU = 1e-9
#: Added to every sample before K-weighting (-400 dBFS): a no-op on the loudness (~1e-15 LU), and it stops
#: the filters' decaying tails becoming subnormal floats in silent gaps, which are 35x slower to compute.
DENORMAL_GUARD = 1e-20
#: pyloudnorm's gating block (s), overlap and channel weights (BS.1770-4 table 3).
_BLOCK_S, _STEP = 0.4, 0.25
_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)
_ABS_GATE_LUFS = -70.0


class LoudnessMeter:
    """Integrated loudness (BS.1770-4, pyloudnorm's algorithm) of a signal fed block by block.

    Args:
        sample_rate: Hz. channels: 1..5 (BS.1770 channel order L, R, C, Ls, Rs).

    ``update(block)`` takes float ``[channels, n]`` blocks of any size; :meth:`integrated_lufs`
    may be called at any time (it measures what was fed so far).
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        import pyloudnorm as pyln
        from scipy.signal import tf2sos

        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        meter = pyln.Meter(self.sample_rate)
        # pyloudnorm's K-weighting stages in its order, as one second-order-section cascade (one sosfilt
        # call instead of one lfilter per stage: 4x less CPU); each stage's passband gain (1.0 for
        # K-weighting) scales its output, so their product scales the cascade's (the filters are linear)
        stages = list(meter._filters.values())
        self._sos = np.concatenate([tf2sos(np.asarray(f.b, np.float64), np.asarray(f.a, np.float64))
                                    for f in stages])
        self._gain = float(np.prod([float(f.passband_gain) for f in stages]))
        self._zi = np.zeros((self._sos.shape[0], self.channels, 2))
        self.frames = 0
        # sum of squares per channel of each 100 ms quarter, [channels, capacity] grown by doubling
        # (16 bytes per quarter and channel pair: 0.6 MB per hour of stereo, not a list of arrays)
        self._quarters = np.zeros((self.channels, 64))
        self._n_quarters = 0
        self._acc = np.zeros(self.channels)
        self._next_bound = self._bound(1)
        self._k = 1  # index of the quarter boundary being filled

    def _bound(self, j: int) -> int:
        """The quarter boundary ``j`` in samples, pyloudnorm's ``int(T_g * (j * step) * rate)``."""
        return int(_BLOCK_S * (j * _STEP) * self.sample_rate)

    def update(self, block: np.ndarray) -> None:
        """Feed the next ``[channels, n]`` samples (float32 or float64)."""
        from scipy.signal import sosfilt

        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"block must be [{self.channels}, samples], got shape {x.shape}")
        # DENORMAL_GUARD keeps the IIR tails out of subnormal floats after digital silence (a drum stem's
        # gaps made them 35x slower); its energy is ~1e-40 per sample, far below every gate
        x, self._zi = sosfilt(self._sos, x + DENORMAL_GUARD, axis=1, zi=self._zi)
        if self._gain != 1.0:
            x = x * self._gain
        n, pos = x.shape[1], 0
        while pos < n:
            take = min(n - pos, self._next_bound - self.frames)
            if take > 0:
                seg = x[:, pos:pos + take]
                self._acc += np.einsum("ij,ij->i", seg, seg)
                pos += take
                self.frames += take
            if self.frames == self._next_bound:
                if self._n_quarters == self._quarters.shape[1]:
                    self._quarters = np.concatenate([self._quarters, np.zeros_like(self._quarters)], axis=1)
                self._quarters[:, self._n_quarters] = self._acc
                self._n_quarters += 1
                self._acc = np.zeros(self.channels)
                self._k += 1
                self._next_bound = self._bound(self._k)

    def integrated_lufs(self) -> float:
        """The integrated loudness so far, LUFS; ``SILENT_LUFS`` (-70) for less than one 400 ms block
        (plus one sample, as pyloudnorm's ``Meter.integrated_loudness``) or a signal the gates remove."""
        rate = self.sample_rate
        if self.frames < int(0.4 * rate) + 1:
            return SILENT_LUFS
        q = self._quarters[:, :self._n_quarters]  # [channels, quarters]
        if self.frames > self._bound(self._k - 1):
            q = np.concatenate([q, self._acc[:, None]], axis=1)
        t = self.frames / rate
        blocks = int(np.round((t - _BLOCK_S) / (_BLOCK_S * _STEP))) + 1
        # block j covers quarters j..j+3 (pyloudnorm's u_j = l_{j+4}); quarters past the end are zeros
        need = blocks + 3
        if q.shape[1] < need:
            q = np.pad(q, ((0, 0), (0, need - q.shape[1])))
        z = (q[:, 0:blocks] + q[:, 1:blocks + 1] + q[:, 2:blocks + 2] + q[:, 3:blocks + 3]) / (_BLOCK_S * rate)
        g = np.asarray(_CHANNEL_GAINS[: self.channels])[:, None]
        with np.errstate(divide="ignore"):
            level = -0.691 + 10.0 * np.log10((g * z).sum(axis=0))
        gated = level >= _ABS_GATE_LUFS
        if not gated.any():
            return SILENT_LUFS
        rel = -0.691 + 10.0 * math.log10(float((g[:, 0] * z[:, gated].mean(axis=1)).sum())) - 10.0
        keep = (level > rel) & (level > _ABS_GATE_LUFS)
        if not keep.any():
            return SILENT_LUFS
        total = float((g[:, 0] * z[:, keep].mean(axis=1)).sum())
        value = -0.691 + 10.0 * math.log10(total) if total > 0 else -math.inf
        return value if math.isfinite(value) and value > SILENT_LUFS else SILENT_LUFS


class TruePeakMeter:
    """True peak (BS.1770-4 Annex 2, :func:`~mixbridge.loudness.true_peak_dbtp`) of a signal fed block by block.

    Args:
        channels: channels of every block (each is metered on its own; the peak is the largest).
    """

    def __init__(self, channels: int) -> None:
        self.channels = int(channels)
        h = true_peak_interpolation_filter()
        self._phases = [h[f::TRUE_PEAK_OVERSAMPLING] for f in range(TRUE_PEAK_OVERSAMPLING)]
        self._taps = max(len(p) for p in self._phases)
        self._hist = np.zeros((self.channels, self._taps - 1))  # the signal before the block (zeros first)
        self.frames = 0
        self._peak = 0.0

    def _scan(self, ext: np.ndarray, start: int, final: bool) -> None:
        """Scan ``ext`` = the ``taps - 1`` samples before signal index ``start`` + what follows (the block,
        or zeros past the end), keeping the output indices :func:`~mixbridge.loudness.true_peak_dbtp` keeps.

        A branch of ``t`` taps convolved ``valid`` over ``ext``'s last columns from ``start - (t - 1)``
        gives the full convolution at indices ``start, start + 1, ...``.
        """
        up, d, n = TRUE_PEAK_OVERSAMPLING, TRUE_PEAK_HALF_TAPS, self.frames
        for f, hf in enumerate(self._phases):
            taps = len(hf)
            lo_keep = -(-(d - f) // up)
            sub = ext[:, self._taps - taps:]
            y = np.stack([np.convolve(row, hf, mode="valid") for row in sub])
            k0 = max(0, lo_keep - start)
            k1 = min(y.shape[1], (d + up * n - 1 - f) // up - start + 1) if final else y.shape[1]
            if k1 > k0:
                self._peak = max(self._peak, float(np.max(np.abs(y[:, k0:k1]))))

    def update(self, block: np.ndarray) -> None:
        """Feed the next ``[channels, n]`` samples."""
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"block must be [{self.channels}, samples], got shape {x.shape}")
        if x.shape[1] == 0:
            return
        self._peak = max(self._peak, float(np.max(np.abs(x))))
        ext = np.concatenate([self._hist, x], axis=1)
        start = self.frames
        self.frames += x.shape[1]
        self._scan(ext, start, final=False)
        self._hist = ext[:, -(self._taps - 1):]

    def true_peak_dbtp(self) -> float:
        """The true peak of what was fed, dBTP (-inf for silence or nothing)."""
        if self.frames == 0:
            return float("-inf")
        # the outputs past the last sample (the zeros after it), which true_peak_dbtp keeps too
        ext = np.concatenate([self._hist, np.zeros((self.channels, self._taps - 1))], axis=1)
        saved = self._peak
        self._scan(ext, self.frames, final=True)
        peak, self._peak = self._peak, saved
        return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def integrated_lufs_blocks(blocks, sample_rate: int, channels: int) -> float:
    """:class:`LoudnessMeter` over an iterable of ``[channels, n]`` blocks: the integrated loudness, LUFS."""
    meter = LoudnessMeter(sample_rate, channels)
    for b in blocks:
        meter.update(b)
    return meter.integrated_lufs()


def _as_signal(audio):
    """``audio`` as it is when it is a 2-D signal read by slices (an array, a ``WavArray`` on disk:
    never read whole here), else ``np.asarray(audio)``."""
    if isinstance(audio, np.ndarray) or (getattr(audio, "ndim", None) == 2 and hasattr(audio, "__getitem__")):
        return audio
    return np.asarray(audio)


def _chunks(audio: np.ndarray, frames: int):
    for start in range(0, audio.shape[1], frames):
        yield audio[:, start:start + frames]


#: Frames per block when a whole array is measured block-wise (2^16: 0.5 MB of float64 per channel).
MEASURE_BLOCK = 1 << 16
