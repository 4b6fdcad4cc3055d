"""What a run of the live bus did: :class:`LiveSummary`, the counts and the text ``mixbridge live`` prints.

:meth:`~mixbridge.bridge.live.LiveBus.summary` fills it from the bus's counters (times in ms, the
callback's wall and CPU time per JACK period); :func:`~mixbridge.bridge.cli.run_live` prints
:meth:`LiveSummary.text` on exit. Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LiveSummary:
    """What a live run did (counts since start; times in ms)."""

    client_name: str
    server_name: str | None
    sample_rate: int
    block_size: int
    latency_samples: int
    blocks: int = 0
    frames: int = 0
    xruns: int = 0
    callback_mean_ms: float = 0.0
    callback_max_ms: float = 0.0
    callback_cpu_mean_ms: float = 0.0
    callback_start_max_ms: float = 0.0
    callback_errors: int = 0
    osc_applied: int = 0
    osc_invalid: int = 0
    osc_coalesced: int = 0
    osc_dropped: int = 0
    proxy: str = "none"
    nonfinite_input_blocks: int = 0
    output_guard_blocks: int = 0
    clipped_samples: int = 0
    #: The master model (``--master-model``): what it did, in words; and its counts.
    master_model: str = "off (the fixed chain)"
    master_predictions: int = 0
    master_values_applied: int = 0
    master_failures: int = 0
    notices: list[str] = field(default_factory=list)

    @property
    def block_ms(self) -> float:
        """One JACK period in ms."""
        return 1e3 * self.block_size / self.sample_rate

    def text(self) -> str:
        """The summary ``mixbridge live`` prints on exit (one ``key: value`` group per line)."""
        seconds = self.frames / self.sample_rate if self.sample_rate else 0.0
        load = self.callback_mean_ms / self.block_ms if self.block_ms else 0.0
        cpu_load = self.callback_cpu_mean_ms / self.block_ms if self.block_ms else 0.0
        return "\n".join([
            f"live summary: {self.blocks} blocks ({seconds:.2f} s of audio) at {self.sample_rate} Hz, "
            f"{self.block_size}-sample periods ({self.block_ms:.2f} ms)",
            f"  xruns: {self.xruns}",
            f"  callback: mean {self.callback_mean_ms:.3f} ms, max {self.callback_max_ms:.3f} ms "
            f"({load:.3f} of a period on average); CPU time mean {self.callback_cpu_mean_ms:.3f} ms "
            f"({cpu_load:.3f} of a core); errors caught: {self.callback_errors}; started at most "
            f"{self.callback_start_max_ms:.3f} ms into its period",
            f"  latency: {self.latency_samples} samples ({1e3 * self.latency_samples / self.sample_rate:.2f} ms)",
            f"  proxy: {self.proxy}",
            f"  OSC: {self.osc_applied} applied, {self.osc_invalid} invalid, {self.osc_coalesced} superseded "
            f"before the next period, {self.osc_dropped} dropped by the kernel (socket buffer full)",
            f"  guards: {self.nonfinite_input_blocks} blocks with non-finite input, "
            f"{self.output_guard_blocks} non-finite output blocks silenced, "
            f"{self.clipped_samples} samples clipped at the ceiling",
            f"  master model: {self.master_model}",
        ])
