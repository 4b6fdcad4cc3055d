"""The live bus without JACK: its signal path (``LiveChain``) and its OSC control (``LiveControl``),
each at its boundary. The bus on a real JACK server is tested in ``test_live.py``.

Oracles: at the schema defaults (flat EQ, ratio-1 compressor, 0 dB gain, a limiter that a -20 dBFS
signal never reaches) the master chain is the identity, so the chain's output is its input delayed
by exactly the documented latency, sample for sample; the proxy stand-in is a known gain and delay.
"""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from mixbridge.bridge.errors import LiveBusError
from mixbridge.bridge.live_chain import MAX_BLOCK, LiveChain
from mixbridge.bridge.live_control import LiveControl, RateLimitedLog
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

    def check_master_param(self, path: str, value: float) -> float:
        if path == "limiter.ceiling_dbtp" and value > 0:
            raise ParamRangeError(f"master.{path} = {value:g} is outside [-6, 0] dBTP")
        return value

    def post_master_params(self, items) -> None:
        self.calls.extend(("master", path, value) for path, value in items)

    def set_proxy_param(self, path: str, value: float) -> float:
        self.calls.append(("proxy", path, value))
        return value

    def set_proxy_bypass(self, bypass: bool) -> None:
        self.calls.append(("bypass", bypass))


def test_control_routes_counts_every_refusal_and_replies_with_the_status():
    bus = FakeBus()
    control = LiveControl(bus, port=0).start()
    try:
        assert control.address[0] == "127.0.0.1"
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
    # master changes are coalesced and posted once per period, proxy changes and bypass apply at once:
    # the order across the two paths is not kept, the order within each is
    assert [c for c in bus.calls if c[0] == "master"] == [("master", "gain.gain_db", -6.0)]
    assert [c for c in bus.calls if c[0] != "master"] == [("proxy", "compressor.threshold_db", -20.0),
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


def _gain(value: float) -> bytes:
    return encode_message(OscMessage("/mixbridge/param/gain/gain_db", (value,)))


#: A gain message with a float type tag and no float: python-osc would read it as 0.0.
FLOAT_TAG_WITHOUT_DATA = b"/mixbridge/param/gain/gain_db\x00\x00\x00,f\x00\x00"


def test_a_float_tag_without_data_and_bad_bypass_values_are_refused_and_counted():
    bus = FakeBus()
    control = LiveControl(bus, port=0)
    control.handle_datagram(FLOAT_TAG_WITHOUT_DATA)
    control.handle_datagram(FLOAT_TAG_WITHOUT_DATA + b"\x00\x00")              # half a float
    control.handle_datagram(_gain(-3.0) + b"\x00\x00\x00\x00")                 # bytes after the argument
    for value in (float("nan"), 0.5, -1, 2, float("inf")):
        control.handle_datagram(encode_message(OscMessage("/mixbridge/proxy/bypass", (value,))))
    control.handle_datagram(encode_message(OscMessage("/mixbridge/param/gain/gain_db", (float("nan"),))))
    control.flush()
    assert bus.calls == [] and (control.applied, control.invalid) == (0, 9)
    for value in (1, 0.0, 1.0, 0):
        control.handle_datagram(encode_message(OscMessage("/mixbridge/proxy/bypass", (value,))))
    assert bus.calls == [("bypass", True), ("bypass", False), ("bypass", True), ("bypass", False)]
    text = "\n".join(bus.notices)
    assert text.count("has 0 of its bytes") == 1 and "has 2 of its bytes" in text
    assert "4 bytes after its last argument" in text
    assert text.count("bypass takes 0 (run the proxy) or 1 (bypass it) only") == 3   # 0.5, -1, 2
    assert text.count("must be a finite number") == 3                                 # NaN, inf, gain NaN


def test_a_flood_is_coalesced_to_one_value_per_parameter_per_period_in_order():
    """10 000 changes between two periods reach the master as one post holding the latest value of each
    parameter, the most recent last; notices are rate-limited, the counts exact."""
    bus = FakeBus()
    control = LiveControl(bus, port=0)
    values = [-6.0 - (i % 37) * 0.25 for i in range(10_000)]
    for i, v in enumerate(values):
        control.handle_datagram(_gain(v))
        if i == 5000:
            control.handle_datagram(encode_message(OscMessage("/mixbridge/param/loudness/target_lufs", (-14.0,))))
    control.flush()
    assert bus.calls == [("master", "loudness.target_lufs", -14.0), ("master", "gain.gain_db", values[-1])]
    assert (control.applied, control.invalid, control.coalesced, control.posts) == (10_001, 0, 9_999, 1)
    assert len(bus.notices) <= control.log.burst + 1
    # a post waits for the callback's next period: nothing more until the bus's block counter moves
    control.handle_datagram(_gain(-1.0))
    control._post()
    assert control.posts == 1
    bus.blocks += 1
    control._post()
    assert control.posts == 2 and bus.calls[-1] == ("master", "gain.gain_db", -1.0)


def test_a_flood_over_the_socket_reaches_a_real_master_chain_bounded_per_period():
    """Through the real socket and thread into a real StreamingMaster: every message is counted,
    the master's queue never holds more than one value per parameter, the last value wins."""
    master = StreamingMaster(SAMPLE_RATE, None, channels=2, max_block=MAX_BLOCK)

    class Bus(FakeBus):
        blocks = 0

        def check_master_param(self, path, value):
            return master._resolve(path, value)[1]

        def post_master_params(self, items):
            self.posts.append((self.blocks, len(master._pending), len(items)))
            for path, value in items:
                master.post(path, value)

    bus = Bus()
    bus.posts = []
    control = LiveControl(bus, port=0).start()
    x = np.zeros((2, PERIOD), np.float32)
    n = 10_000
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(n):
                sock.sendto(_gain(-6.0 - i % 10), ("127.0.0.1", control.port))
            sock.sendto(FLOAT_TAG_WITHOUT_DATA, ("127.0.0.1", control.port))
            deadline = time.monotonic() + 60
            while control.applied + control.invalid + control.dropped < n + 1:
                master.process(x)         # the "callback": one period
                bus.blocks += 1
                assert time.monotonic() < deadline, (control.applied, control.invalid)
                time.sleep(PERIOD / SAMPLE_RATE)
    finally:
        control.stop()
    master.process(x)
    assert control.applied + control.invalid + control.dropped == n + 1
    assert control.dropped or control.invalid == 1
    # one parameter: one value per post; a post after the callback ran finds the queue drained
    assert all(items == 1 for _, _, items in bus.posts)
    after_a_period = [queued for (b0, _, _), (b1, queued, _) in zip(bus.posts, bus.posts[1:]) if b1 != b0]
    assert after_a_period and not any(after_a_period)
    assert master.params["gain"]["gain_db"] == -6.0 - (n - 1) % 10


def test_the_rate_limited_log_lets_a_burst_through_then_reports_what_it_suppressed():
    now = [0.0]
    lines: list[str] = []
    log = RateLimitedLog(lines.append, burst=3, per_s=2.0, clock=lambda: now[0])
    sent = [log.say(f"line {i}") for i in range(10)]
    assert sent == [True] * 3 + [False] * 7 and lines == ["line 0", "line 1", "line 2"]
    now[0] = 0.6          # one token back: the suppressed count goes out first
    log.flush()
    assert lines[-1].startswith("osc: 7 notices suppressed")
    now[0] = 2.0
    assert log.say("line 10") and lines[-1] == "line 10" and log.suppressed_total == 7
