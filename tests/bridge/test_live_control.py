"""The live bus without JACK: its signal path (``LiveChain``) and its OSC control (``LiveControl``),
each at its boundary. The bus on a real JACK server is tested in ``test_live.py``.

Oracles: at the schema defaults (flat EQ, ratio-1 compressor, 0 dB gain, a limiter that a -20 dBFS
signal never reaches) the master chain is the identity, so the chain's output is its input delayed
by exactly the documented latency, sample for sample; the proxy stand-in is a known gain and delay.
"""
from __future__ import annotations

import socket

import numpy as np
import pytest

from mixbridge.bridge.errors import LiveBusError
from mixbridge.bridge.live_chain import MAX_BLOCK, LiveChain
from mixbridge.bridge.live_control import LiveControl
from mixbridge.bridge.osc import OscMessage, decode_message, encode_message
from mixbridge.errors import ParamRangeError
from mixbridge.plugins.master_bus import StreamingMaster

SAMPLE_RATE = 48000
PERIOD = 256
#: The master chain's latency at 48 kHz (docs/live.md): look-ahead L = round(1.5 ms * 48 kHz) = 72,
#: delayed L - 1, plus the true-peak interpolator's 10 samples.
EXPECTED_LATENCY = 72 - 1 + 10
#: The limiter's ceiling at the schema default, -1 dBTP, as a sample bound (a true peak bounds the samples).
CEILING = 10 ** (-1.0 / 20)
#: A socket reply on loopback within this long, or the control is not answering.
REPLY_TIMEOUT_S = 5.0


def _chain(proxy=None) -> LiveChain:
    chain = LiveChain(StreamingMaster(SAMPLE_RATE, None, channels=2, max_block=MAX_BLOCK), proxy, channels=2)
    chain.prepare([PERIOD])
    return chain


def _run(chain: LiveChain, x: np.ndarray) -> np.ndarray:
    return np.concatenate([chain.process(x[:, i:i + PERIOD].copy(), PERIOD).copy()
                           for i in range(0, x.shape[1], PERIOD)], axis=1)


def _noise(periods: int, rms: float = 0.1, seed: int = 0) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal((2, periods * PERIOD))).astype(np.float32)


def test_default_chain_is_a_pure_delay_of_its_latency():
    chain = _chain()
    assert chain.latency_samples == EXPECTED_LATENCY
    x = _noise(40)
    y = _run(chain, x)
    lat = EXPECTED_LATENCY
    assert not np.any(y[:, :lat])
    assert np.array_equal(y[:, lat:], x[:, :-lat])


def test_nonfinite_input_is_zeroed_and_counted():
    chain = _chain()
    x = _noise(8)
    bad = x.copy()
    bad[0, 3 * PERIOD + 5], bad[1, 3 * PERIOD + 9] = np.nan, np.inf
    y = _run(chain, bad)
    want = x.copy()
    want[0, 3 * PERIOD + 5] = want[1, 3 * PERIOD + 9] = 0.0
    assert chain.nonfinite_input_blocks == 1 and chain.output_guard_blocks == 0
    assert np.array_equal(y[:, EXPECTED_LATENCY:], want[:, :-EXPECTED_LATENCY])


def test_output_never_passes_the_ceiling_or_full_scale():
    chain = _chain()
    y = _run(chain, _noise(40, rms=2.0))  # +6 dBFS RMS noise, far past the ceiling
    assert np.all(np.isfinite(y))
    assert np.max(np.abs(y)) <= CEILING * (1 + 1e-6)


class DelayProxy:
    """A stand-in proxy: ``gain`` times the input delayed by ``latency_samples``; raises from block ``fail_at``."""

    sample_rate = SAMPLE_RATE
    channels = out_channels = 2
    latency_samples = 32

    def __init__(self, gain: float = 0.5, fail_at: int | None = None) -> None:
        self.gain, self.fail_at = gain, fail_at
        self.calls = 0
        self.resets = 0
        self._hist = np.zeros((2, self.latency_samples), np.float32)

    def prepare(self, sizes) -> None:
        pass

    def reset(self) -> None:
        self.resets += 1
        self._hist[:] = 0.0

    def process(self, x):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("model exploded")
        ext = np.concatenate([self._hist, x], axis=1)
        self._hist = ext[:, -self.latency_samples:].copy()
        return (self.gain * ext[:, :x.shape[1]]).astype(np.float32)


def test_failing_proxy_falls_back_to_the_dry_path_at_the_same_latency():
    fail_at = 11
    proxy = DelayProxy(gain=0.5, fail_at=fail_at)
    chain = _chain(proxy)
    lat = DelayProxy.latency_samples + EXPECTED_LATENCY
    assert chain.latency_samples == lat
    x = _noise(30, rms=0.05)
    y = _run(chain, x)
    assert chain.proxy_failed and not chain.proxy_active
    block, what, error = chain.failure
    assert (block, what, type(error)) == (fail_at, "raised", RuntimeError)
    # the switch enters the master at the first sample of the failed block and leaves it its latency later
    split = (fail_at - 1) * PERIOD + EXPECTED_LATENCY
    np.testing.assert_array_equal(y[:, lat:split], 0.5 * x[:, :split - lat])     # wet: the proxy's gain
    np.testing.assert_array_equal(y[:, split:], x[:, split - lat:-lat])        # dry, delayed alike
    assert chain.set_bypass(False) is True and chain.proxy_active
    proxy.fail_at = None
    chain.process(x[:, :PERIOD].copy(), PERIOD)
    assert proxy.resets == 1  # re-armed with its state cleared


# ------------------------------------------------------------------------------ the control
class FakeBus:
    """The control API of LiveBus, recording what the control calls."""

    blocks, xruns, latency_samples, clipped_samples, proxy_active = 7, 2, EXPECTED_LATENCY, 3, True

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.notices: list[str] = []

    def notify(self, text: str) -> None:
        self.notices.append(text)

    def set_master_param(self, path: str, value: float) -> float:
        if path == "limiter.ceiling_dbtp" and value > 0:
            raise ParamRangeError(f"master.{path} = {value:g} is outside [-6, 0] dBTP")
        self.calls.append(("master", path, value))
        return value

    def set_proxy_param(self, path: str, value: float) -> float:
        self.calls.append(("proxy", path, value))
        return value

    def set_proxy_bypass(self, bypass: bool) -> None:
        self.calls.append(("bypass", bypass))


def test_control_routes_counts_every_refusal_and_replies_with_the_status():
    bus = FakeBus()
    control = LiveControl(bus, port=0).start()
    try:
        assert control._server.sock.getsockname()[0] == "127.0.0.1"
        sent = [OscMessage("/mixbridge/param/gain/gain_db", (-6.0,)),
                OscMessage("/mixbridge/proxy/compressor/threshold_db", (-20,)),
                OscMessage("/mixbridge/proxy/bypass", (1,)),
                OscMessage("/mixbridge/nosuch", (1.0,)),                          # unknown address
                OscMessage("/mixbridge/param/gain/gain_db", ("loud",)),          # not a number
                OscMessage("/mixbridge/param/limiter/ceiling_dbtp", (3.0,))]     # refused by the bus
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(REPLY_TIMEOUT_S)
            for m in sent:
                sock.sendto(encode_message(m), ("127.0.0.1", control.port))
            sock.sendto(b"\x00not osc", ("127.0.0.1", control.port))           # does not parse
            sock.sendto(encode_message(OscMessage("/mixbridge/status")), ("127.0.0.1", control.port))
            status = decode_message(sock.recvfrom(65536)[0])
    finally:
        control.stop()
    assert bus.calls == [("master", "gain.gain_db", -6.0), ("proxy", "compressor.threshold_db", -20.0),
                         ("bypass", True)]
    assert (control.applied, control.invalid) == (3, 4)
    assert status.address == "/mixbridge/status"
    assert status.args == (7, 2, 3, 4, 1, EXPECTED_LATENCY, 3)
    invalid = [n for n in bus.notices if n.startswith("osc: invalid:")]
    assert len(invalid) == 4
    assert any("unknown address /mixbridge/nosuch" in n for n in invalid)
    assert any("needs one number" in n for n in invalid)
    assert any("is outside [-6, 0] dBTP" in n for n in invalid)


def test_a_busy_port_is_refused_with_the_option_to_change():
    first = LiveControl(FakeBus(), port=0).start()
    try:
        with pytest.raises(LiveBusError, match="--osc-port"):
            LiveControl(FakeBus(), port=first.port).start()
    finally:
        first.stop()
