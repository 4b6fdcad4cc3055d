"""Bounded-memory rendering (issue 10 item 6): block-wise console, meters, master, stems and writer.

Oracles: the whole-signal paths that stay in the code (``render_track`` + ``Backend.process`` for
the console, ``mixbridge.loudness`` for the meters, ``render_master`` for the master chain,
``scipy.signal.welch``, ``scipy.io.wavfile.write``), on a real multitrack (the demo builder's song
when its Debian sources are installed, and the synthetic session multitrack always), with
automation on every automatable stage; and tracemalloc for the memory itself.
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyloudnorm as pyln
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from mixbridge.audio import load_stems, write_audio
from mixbridge.loudness import (
    LOUDNESS_STREAM_TOLERANCE_LU,
    LoudnessMeter,
    TruePeakMeter,
    integrated_lufs,
    true_peak_dbtp,
)
from mixbridge.models.mixers import get_mixer
from mixbridge.plugins.backend import get_backend
from mixbridge.plugins.console import (
    RENDER_BLOCK,
    _split_automation,
    load_session_audio,
    render_console,
    render_track,
)
from mixbridge.session import Automation
from tests.support import needs_demo_sources, needs_vst

#: float32 resolution at full scale (2^-23): the console's stages are float32.
FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: Block-wise mix vs whole-track mix at the default block, relative to the mix peak. The EQ is
#: bit-identical (pedalboard's filters keep their float32 state with ``reset=False``, and
#: :data:`RENDER_BLOCK` is a multiple of its internal buffer), the compressor too (its release
#: ramp restarts per block but lands on the same float32 gains); the reverb's overlap-add runs
#: other FFT sizes than one whole ``oaconvolve``: float64 error ~1e-15, which flips the float32
#: rounding of a return sample by at most 1 ulp, then summed with the dry mix: 2 ulp of the peak.
DEFAULT_BLOCK_TOL = 2 * FLOAT32_EPS
#: At odd block sizes pedalboard splits its float32 biquad recursion at other samples, so the
#: float32 rounding of the state differs: measured 1.1e-6 of the peak at 4097 frames on the demo
#: song. The bound is the float32 error of a biquad with noise gain up to ~80 (a 12 dB shelf at
#: 60 Hz): 80 * 2^-23 = 1e-5 of the peak (-100 dB), far below any audible or loudness difference.
ODD_BLOCK_TOL = 1e-5


def _whole_mix(session, audio, backend) -> np.ndarray:
    """The console as it was: every track rendered whole (``render_track``), summed, then the reverb."""
    sr = session.sample_rate
    n = max(a.shape[1] for a in audio.values())
    mix = np.zeros((2, n), np.float32)
    bus = np.zeros((2, n), np.float32)
    any_send = False
    for t in session.tracks:
        tr, send = render_track(t, audio[t.name], backend, sr, measure=False)
        mix += tr.output
        if send is not None:
            bus += send
            any_send = True
    if any_send:
        mix += backend.process("reverb", bus, session.master.params["reverb"],
                               _split_automation(session.master.automation, "reverb"), label="reverb bus")
    return mix


def _automate(session) -> None:
    """Curves on every automatable stage of the first tracks and on the reverb return."""
    dur = 6.0
    t0, t1 = session.tracks[0], session.tracks[1 % len(session.tracks)]
    t0.automation["eq.peak2_gain_db"] = Automation([0.3, dur - 1.0], [-6.0, 6.0])
    t0.automation["compressor.threshold_db"] = Automation([0.0, dur], [-30.0, -10.0])
    t0.automation["fader.fader_db"] = Automation([0.5, 2.5], [-3.0, 2.0])
    t1.automation["pan.pan"] = Automation([0.0, dur], [-0.8, 0.8])
    t1.automation["send.send_db"] = Automation([0.0, 1.0, dur], [-80.0, -12.0, -20.0])
    session.master.automation["reverb.return_db"] = Automation([0.0, dur], [-6.0, 0.0])


def _session(folder: Path, mixer: str = "knowledge"):
    stems = load_stems(folder)
    s = get_mixer(mixer)(stems, source_base=folder)
    s.base_dir = folder
    return s


def _check_blocks_equal_whole(folder: Path, backend_name: str = "builtin", block_sizes=(RENDER_BLOCK, 4097)):
    s = _session(folder)
    _automate(s)
    be = get_backend(backend_name, s.sample_rate)
    audio = load_session_audio(s)
    whole = _whole_mix(s, audio, be)
    peak = float(np.max(np.abs(whole)))
    assert peak > 1e-3
    for block in block_sizes:
        mix = render_console(s, be, block_size=block).mix  # read block by block from the files
        tol = DEFAULT_BLOCK_TOL if block == RENDER_BLOCK else ODD_BLOCK_TOL
        err = float(np.max(np.abs(mix - whole)))
        assert err <= tol * peak, f"block {block}: {err:.3g} > {tol:.3g} x peak {peak:.3g}"


def test_block_render_equals_whole_render_on_the_multitrack(multitrack):
    _check_blocks_equal_whole(multitrack, block_sizes=(RENDER_BLOCK, 4097, 1000))


@pytest.fixture(scope="module")
def demo_song(tmp_path_factory) -> Path:
    """One real demo song (30 s of E1M9 rendered by the demo builder from its Debian sources)."""
    from mixbridge.plugins.datagen.demo.build import DemoSettings, build_demo

    out = tmp_path_factory.mktemp("demo")
    build_demo(out, DemoSettings(songs=(("D_E1M9", "black_pearl"),), excerpt_s=30.0), progress=False,
               log=lambda s: None)
    return next(p for p in out.iterdir() if p.is_dir() and any(p.glob("*.wav")))


@needs_demo_sources
def test_block_render_equals_whole_render_on_a_real_song(demo_song):
    _check_blocks_equal_whole(demo_song)


@needs_vst
def test_vst_backend_renders_each_track_whole_and_the_same(multitrack):
    # DawDreamer re-prepares its plugins on every render, so the vst chain is not streaming: the
    # console hands it each whole track (one at a time); the mix is the whole render's exactly
    _check_blocks_equal_whole(multitrack, "vst", block_sizes=(RENDER_BLOCK,))
    be = get_backend("vst", 44100)
    assert not be.open_chain([("eq", {}, None)]).streaming


def test_builtin_chains_stream_and_the_default_takes_one_block():
    from mixbridge.schema import CHANNEL_STRIP

    strip = CHANNEL_STRIP.defaults()
    be = get_backend("builtin", 44100)
    assert be.open_chain([("eq", strip["eq"], None), ("compressor", strip["compressor"], None)]).streaming
    from mixbridge.plugins.backend import Chain

    chain = Chain(be, [("limiter", {"ceiling_dbtp": -1.0, "release_ms": 50.0}, None)], "x")
    chain.process(np.zeros((2, 100), np.float32), 0)
    with pytest.raises(RuntimeError, match="one call"):
        chain.process(np.zeros((2, 100), np.float32), 100)


def test_render_console_measures_tracks_without_keeping_them(multitrack):
    s = _session(multitrack)
    r = render_console(s, "builtin", measure=True)
    audio = load_session_audio(s)
    be = get_backend("builtin", s.sample_rate)
    assert r.reverb_return is None  # read from files: not kept (it is in the mix)
    for t, tr in zip(s.tracks, r.tracks):
        assert tr.output is None
        ref, _ = render_track(t, audio[t.name], be, s.sample_rate, measure=True)
        assert tr.lufs == pytest.approx(integrated_lufs(ref.output, s.sample_rate), abs=1e-6)
        np.testing.assert_allclose(tr.pre_comp_rms_db, ref.pre_comp_rms_db, atol=1e-4)
        np.testing.assert_allclose(tr.post_comp_rms_db, ref.post_comp_rms_db, atol=1e-4)


# ---------------------------------------------------------------------------------------- meters
def _signals():
    rng = np.random.default_rng(0)
    sr = 44100
    t = np.arange(3 * sr + 123) / sr
    tone = (0.3 * np.sin(2 * np.pi * 997 * t) * (t > 1.0)).astype(np.float32)
    return sr, [
        (rng.standard_normal((2, 3 * sr + 123)) * 0.1).astype(np.float32),
        np.stack([tone, 0.5 * tone]),
        tone[None],
        (rng.standard_normal((2, int(0.4 * sr) + 1)) * 0.2).astype(np.float32),  # one gating block
        (rng.standard_normal((2, int(0.4 * sr))) * 0.2).astype(np.float32),  # shorter: silent
        np.zeros((2, sr), np.float32),
    ]


@pytest.mark.parametrize("block", [1, 63, 4096, 4097, 1 << 20])
def test_block_meters_equal_the_whole_signal_meters(block):
    sr, signals = _signals()
    for x in signals:
        if block == 1 and x.shape[1] > sr:
            x = x[:, : sr // 2]  # per-sample feeding is slow in Python: half a second is enough
        m, p = LoudnessMeter(sr, x.shape[0]), TruePeakMeter(x.shape[0])
        for a in range(0, x.shape[1], block):
            m.update(x[:, a:a + block])
            p.update(x[:, a:a + block])
        # against the independent references: pyloudnorm's own whole-signal meter, scipy's resample_poly
        with np.errstate(divide="ignore"):
            ref_lufs = float(pyln.Meter(sr).integrated_loudness(x.astype(np.float64).T))
        if x.shape[1] > int(0.4 * sr) and np.isfinite(ref_lufs) and ref_lufs > -70.0:
            assert m.integrated_lufs() == pytest.approx(ref_lufs, abs=LOUDNESS_STREAM_TOLERANCE_LU)
        else:
            assert m.integrated_lufs() == -70.0
        up = resample_poly(x.astype(np.float64), 4, 1, axis=1)
        peak = max(float(np.max(np.abs(up))), float(np.max(np.abs(x)))) if x.size else 0.0
        want = 20.0 * np.log10(peak) if peak > 0 else float("-inf")
        assert p.true_peak_dbtp() == pytest.approx(want, abs=1e-9)
        assert m.integrated_lufs() == pytest.approx(integrated_lufs(x, sr), abs=LOUDNESS_STREAM_TOLERANCE_LU)
        assert p.true_peak_dbtp() == true_peak_dbtp(x, sr)


def test_welch_blocks_equals_welch():
    from scipy.signal import welch

    from mixbridge.plugins.report import WELCH_NPERSEG, welch_blocks

    rng = np.random.default_rng(1)
    for n in (WELCH_NPERSEG + 1, 2048 * 300 + 17, 2048 * 256 + 4096):
        x = rng.standard_normal((2, n))
        f, p = welch(x.mean(axis=0), fs=44100, nperseg=WELCH_NPERSEG)
        f2, p2 = welch_blocks(x, 44100)
        np.testing.assert_array_equal(f, f2)
        np.testing.assert_allclose(p2, p, rtol=1e-12)


# ---------------------------------------------------------------------------------------- master
def test_master_renders_what_render_master_renders(multitrack):
    from mixbridge.plugins.master_bus import render_master
    from mixbridge.plugins.mastering import _render_measured, chain_params, master

    s = _session(multitrack)
    mix = render_console(s, "builtin").mix
    chain = chain_params(s.master.params, 3.0)
    out, lufs = _render_measured(mix, s.sample_rate, chain)
    want = render_master(mix, s.sample_rate, chain)
    np.testing.assert_array_equal(out, want)
    assert lufs == pytest.approx(integrated_lufs(want, s.sample_rate), abs=LOUDNESS_STREAM_TOLERANCE_LU)
    res = master(mix, s.master.params, s.sample_rate)
    np.testing.assert_array_equal(res.audio, render_master(mix, s.sample_rate, chain_params(s.master.params,
                                                                                            res.gain_db)))
    assert res.lufs == pytest.approx(integrated_lufs(res.audio, s.sample_rate), abs=LOUDNESS_STREAM_TOLERANCE_LU)
    assert res.true_peak_dbtp == true_peak_dbtp(res.audio, s.sample_rate)


# ---------------------------------------------------------------------------------------- stems, writer
def test_lazy_stems_give_the_same_audio_notices_and_sessions(multitrack_copy):
    # a shorter stem (zero-padded) and a silent one, as load_stems notices them
    sr = sf.info(str(multitrack_copy / "kick.wav")).samplerate
    sf.write(multitrack_copy / "short.wav", np.full(sr, 0.1, np.float32), sr, subtype="FLOAT")
    sf.write(multitrack_copy / "quiet.wav", np.zeros(2 * sr, np.float32), sr, subtype="FLOAT")
    eager, lazy = load_stems(multitrack_copy), load_stems(multitrack_copy, lazy=True)
    assert lazy.notices == eager.notices and lazy.n_samples == eager.n_samples
    for e, z in zip(eager.stems, lazy.stems):
        assert not z.held
        np.testing.assert_array_equal(np.concatenate(list(z.blocks(10007)), axis=1), e.audio)
        np.testing.assert_array_equal(z.read(5000, 777), e.audio[:, 5000:5777])
        assert z.silent == e.silent and not z.held
    for mixer in ("knowledge", "equal_loudness"):
        a = get_mixer(mixer)(eager, source_base=multitrack_copy).to_json()
        b = get_mixer(mixer)(lazy, source_base=multitrack_copy).to_json()
        assert a["tracks"] == b["tracks"], mixer
    assert not any(z.held for z in lazy.stems)  # the mixers read blocks, they kept nothing


def test_write_audio_writes_scipys_bytes_block_by_block(tmp_path):
    from scipy.io import wavfile

    rng = np.random.default_rng(2)
    for shape in ((2, 1), (1, 131073), (2, 70001)):
        x = rng.standard_normal(shape).astype(np.float32)
        write_audio(tmp_path / "a.wav", x, 48000)
        wavfile.write(tmp_path / "b.wav", 48000, np.ascontiguousarray(x.T).astype("<f4"))
        assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


# ---------------------------------------------------------------------------------------- memory
#: Python-side allocation bound of a render, in mix sizes, beyond the block working set: the mix,
#: the send bus and the master's output (numpy reports its buffers to tracemalloc).
MIX_MULTIPLES = 3.0
#: The working set of a few blocks of RENDER_BLOCK frames (float64 temporaries included), bytes.
BLOCK_WORKING_SET = 64 * RENDER_BLOCK * 8


def test_render_memory_does_not_grow_with_the_number_of_tracks(tmp_path):
    """12 stereo tracks of 20 s: the old console held every track (12 x the mix and more); the
    block-wise one holds the mix, the send bus and a few blocks."""
    from mixbridge.app.automix import render_session

    sr, seconds, tracks = 44100, 20.0, 12
    n = int(seconds * sr)
    rng = np.random.default_rng(3)
    folder = tmp_path / "stems"
    folder.mkdir()
    for i in range(tracks):
        x = (rng.standard_normal((n, 2)) * 0.05).astype(np.float32)
        sf.write(folder / f"t{i:02d}.wav", x, sr, subtype="FLOAT")
    stems = load_stems(folder, lazy=True)
    s = get_mixer("knowledge")(stems, source_base=folder)
    s.base_dir = folder
    mix_bytes = 2 * n * 4
    tracemalloc.start()
    try:
        console, mres, _ = render_session(s, "builtin", measure=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= MIX_MULTIPLES * mix_bytes + BLOCK_WORKING_SET, \
        f"peak {peak / 1e6:.0f} MB for a {mix_bytes / 1e6:.0f} MB mix of {tracks} tracks"
    assert mres.lufs == pytest.approx(-14.0, abs=0.1)


def test_a_source_at_another_rate_is_resampled_whole_and_rendered_the_same(multitrack_copy):
    from mixbridge.audio import read_audio, resample

    audio, sr = read_audio(multitrack_copy / "bass.wav")
    sf.write(multitrack_copy / "bass.wav", resample(audio, sr, 48000).T, 48000, subtype="FLOAT")
    s = _session(multitrack_copy, "mono_sum")
    be = get_backend("builtin", s.sample_rate)
    whole = _whole_mix(s, load_session_audio(s), be)
    np.testing.assert_array_equal(render_console(s, be).mix, whole)
    # into a file: the resampled source goes through a temporary WAV, read block by block
    on_disk = render_console(s, be, mix_out=multitrack_copy.parent / "mix.wav").mix
    np.testing.assert_array_equal(on_disk[:, :], whole)
    on_disk.close()


# ------------------------------------------------------------------- memory against the length
#: Allowed growth of a file-backed render's peak allocations from a 6 s to a 24 s session, as a
#: fraction of the 24 s mix's float32 size. What may grow with the length is the meters' frames
#: (per track: 10 loudness quarters and 2 x 20 RMS frames per second, 480 B/s; the master's 160 B/s):
#: 0.6 % of the mix's 353 kB/s for 4 tracks; a mix, a send bus or a master held in memory is 75 %.
LENGTH_GROWTH = 0.05


def _noise_stems(folder: Path, seconds: float, tracks: int = 4, sr: int = 44100) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    n = int(seconds * sr)
    for i in range(tracks):
        x = (rng.standard_normal((n, 2)) * 0.05 * (i + 1)).astype(np.float32)
        sf.write(folder / f"t{i:02d}.wav", x, sr, subtype="FLOAT")
    return folder


def _file_render_peak(tmp_path: Path, seconds: float, master: bool) -> tuple[int, int]:
    """``(tracemalloc peak, mix bytes)`` of the console (and ``master``: the master bus) rendered
    into files, 4 noise tracks of ``seconds`` with reverb sends (knowledge mixer), blocks of 4096."""
    from mixbridge.app.automix import close_renders, render_session

    folder = _noise_stems(tmp_path / f"stems{seconds:g}", seconds)
    s = get_mixer("knowledge")(load_stems(folder, lazy=True), source_base=folder)
    s.base_dir = folder
    assert any(t.params["send"]["send_db"] > -80 for t in s.tracks)  # the send bus is used
    tracemalloc.start()
    try:
        if master:
            console, mres, _ = render_session(s, "builtin", measure=True, mix_out=tmp_path / f"mix{seconds:g}.wav",
                                              master_out=tmp_path / f"master{seconds:g}.wav")
            close_renders(console, mres)
        else:
            render_console(s, "builtin", measure=True, block_size=4096,
                           mix_out=tmp_path / f"mix{seconds:g}.wav").mix.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, 2 * int(seconds * 44100) * 4


def test_console_rendered_into_a_file_holds_no_full_length_buffer(tmp_path):
    """Block-major: the tracks, the send bus and the mix are never held whole (a 4x longer session
    allocates no more); the mix file holds exactly what the in-memory render gives."""
    short, _ = _file_render_peak(tmp_path, 6.0, master=False)
    long_, mix_bytes = _file_render_peak(tmp_path, 24.0, master=False)
    assert long_ - short <= LENGTH_GROWTH * mix_bytes, \
        f"peak {short / 1e6:.1f} MB at 6 s, {long_ / 1e6:.1f} MB at 24 s ({mix_bytes / 1e6:.1f} MB mix)"
    s = get_mixer("knowledge")(load_stems(tmp_path / "stems24", lazy=True), source_base=tmp_path / "stems24")
    s.base_dir = tmp_path / "stems24"
    write_audio(tmp_path / "memory.wav", render_console(s, "builtin", measure=True, block_size=4096).mix, 44100)
    assert (tmp_path / "memory.wav").read_bytes() == (tmp_path / "mix24.wav").read_bytes()


def test_render_session_into_files_does_not_grow_with_the_length(tmp_path):
    """Console and master bus into files: peak allocations independent of the session's length."""
    short, _ = _file_render_peak(tmp_path, 6.0, master=True)
    long_, mix_bytes = _file_render_peak(tmp_path, 24.0, master=True)
    assert long_ - short <= LENGTH_GROWTH * mix_bytes, \
        f"peak {short / 1e6:.1f} MB at 6 s, {long_ / 1e6:.1f} MB at 24 s ({mix_bytes / 1e6:.1f} MB mix)"


def test_automix_reads_every_stem_block_by_block(multitrack, tmp_path, monkeypatch):
    """Every read of a stem file in automix (mixer, console, master; report on) is one block, never a
    whole track (the multitrack's tracks are 6 s: 4 blocks)."""
    from mixbridge import audio
    from mixbridge.app.automix import automix

    reads: list[tuple[str, int]] = []
    original = audio.AudioReader.read

    def spy(self, start=0, frames=None):
        got = original(self, start, frames)
        reads.append((self.path.name, got.shape[1]))
        return got

    monkeypatch.setattr(audio.AudioReader, "read", spy)
    automix(multitrack, tmp_path / "out", mixer="knowledge", progress=False)
    track_frames = sf.info(str(sorted(multitrack.glob("*.wav"))[0])).frames
    stem_reads = [f for name, f in reads if (multitrack / name).exists()]
    assert stem_reads and track_frames > 2 * RENDER_BLOCK
    assert max(stem_reads) <= max(RENDER_BLOCK, audio.STEM_BLOCK) < track_frames


def test_wav_array_holds_write_audios_bytes_and_reads_blocks(tmp_path):
    from mixbridge.audio import WavArray, read_audio

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 70001)).astype(np.float32)
    wa = WavArray(tmp_path / "a.wav", 2, x.shape[1], 48000)
    for a in range(0, x.shape[1], 4097):  # written out of order: each block lands at its frames
        b = x.shape[1] - a - 4097
        wa[:, max(b, 0):b + 4097] = x[:, max(b, 0):b + 4097]
    np.testing.assert_array_equal(wa[:, 100:5000], x[:, 100:5000])
    np.testing.assert_array_equal(wa[3:7], x[:, 3:7])
    with pytest.raises(IndexError):
        wa[0, 3:7]
    write_audio(tmp_path / "a.wav", wa, 48000)  # its own file: checked and flushed, not rewritten
    wa.close()
    write_audio(tmp_path / "b.wav", x, 48000)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert np.array_equal(read_audio(tmp_path / "a.wav")[0], x)
    again = WavArray(tmp_path / "a.wav", 2, x.shape[1], 48000, create=False)
    np.testing.assert_array_equal(again[:, :], x)
    write_audio(tmp_path / "c.wav", again, 48000)  # another path: copied block by block
    assert (tmp_path / "c.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    again[:, 5:6] = np.nan
    from mixbridge.errors import AudioInputError

    with pytest.raises(AudioInputError, match="NaN"):
        write_audio(tmp_path / "d.wav", again, 48000)
    again.close()
    with pytest.raises(ValueError, match="bytes"):
        WavArray(tmp_path / "a.wav", 2, x.shape[1] + 1, 48000, create=False)


def test_a_wav_array_on_a_full_disk_names_its_file(tmp_path):
    """/dev/full refuses every write with ENOSPC, as a full disk does: the error names the file."""
    import errno
    import os

    from mixbridge.audio import WavArray

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    link = tmp_path / "full.wav"
    link.symlink_to("/dev/full")
    with pytest.raises(OSError) as e:
        wa = WavArray(link, 2, 1000, 44100)
        wa[:, 0:1000] = np.ones((2, 1000), np.float32)
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(link)


def test_render_command_does_not_grow_with_the_length(tmp_path):
    """``mixbridge render`` (no --mix-output): the mix goes to a temporary file beside the output too."""
    from mixbridge.app.automix import render
    from mixbridge.session import save

    peaks = []
    for seconds in (6.0, 24.0):
        folder = _noise_stems(tmp_path / f"stems{seconds:g}", seconds)
        s = get_mixer("knowledge")(load_stems(folder, lazy=True), source_base=folder)
        save(s, folder / "session.json")
        tracemalloc.start()
        try:
            render(folder / "session.json", tmp_path / f"out{seconds:g}" / "master.wav", progress=False)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert sorted(p.name for p in (tmp_path / f"out{seconds:g}").iterdir()) == ["master.wav"]  # no scratch left
    mix_bytes = 2 * int(24.0 * 44100) * 4
    assert peaks[1] - peaks[0] <= LENGTH_GROWTH * mix_bytes, f"{peaks[0] / 1e6:.1f} MB -> {peaks[1] / 1e6:.1f} MB"
