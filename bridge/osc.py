"""Layer 1 of the bridge: OSC 1.0 messages and bundles as bytes, no sockets.

Encoding follows the OSC 1.0 specification (opensoundcontrol.org, "The Open
Sound Control 1.0 Specification"): an address string, a type-tag string that
starts with ``,``, then the arguments, every part padded with zero bytes to a
multiple of 4 bytes, integers and floats big-endian. Bundles are ``#bundle``,
a 64-bit NTP time tag (seconds since 1900-01-01 in the upper 32 bits, the
fraction in the lower 32; the value 1 means "immediately") and size-prefixed
elements.

Python types map to OSC tags: ``int`` -> ``i`` (int32), ``float`` -> ``f``
(float32), ``str`` -> ``s``, ``bytes`` -> ``b`` (blob), ``True``/``False`` ->
``T``/``F``, ``None`` -> ``N``. The decoder also reads ``h`` (int64), ``d``
(float64), ``t`` (time tag) and ``I`` (impulse). Decoding never guesses: bytes
that do not parse raise :class:`~mixbridge.bridge.errors.OscParseError` with the
offset, so a receiver can count and report them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import OscEncodeError, OscParseError

#: NTP epoch (1900-01-01) to Unix epoch (1970-01-01), in seconds (RFC 5905).
NTP_UNIX_OFFSET_S = 2208988800
#: The OSC time tag that means "dispatch immediately" (OSC 1.0 spec).
IMMEDIATELY = 1
BUNDLE_TAG = b"#bundle\x00"
INT32_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class OscMessage:
    """One OSC message: an address such as ``/strip/gain`` and its arguments."""

    address: str
    args: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))

    @property
    def typetags(self) -> str:
        return "".join(_tag(a) for a in self.args)

    def __str__(self) -> str:
        return f"{self.address} ,{self.typetags} " + " ".join(_fmt(a) for a in self.args)


@dataclass(frozen=True)
class OscBundle:
    """A bundle: an NTP time tag and its elements (messages or nested bundles)."""

    timetag: int
    elements: tuple

    def messages(self) -> list[OscMessage]:
        out: list[OscMessage] = []
        for e in self.elements:
            out.extend(e.messages() if isinstance(e, OscBundle) else [e])
        return out


def _fmt(a: object) -> str:
    if isinstance(a, float):
        return f"{a:.6g}"
    if isinstance(a, str):
        return f'"{a}"'
    return repr(a)


def _tag(a: object) -> str:
    if a is True:
        return "T"
    if a is False:
        return "F"
    if a is None:
        return "N"
    if isinstance(a, int):
        return "i"
    if isinstance(a, float):
        return "f"
    if isinstance(a, str):
        return "s"
    if isinstance(a, (bytes, bytearray)):
        return "b"
    raise OscEncodeError(
        f"OSC argument {a!r} has type {type(a).__name__}; use int, float, str, bytes, bool or None"
    )


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _osc_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    if b"\x00" in raw:
        raise OscEncodeError(f"OSC string {s!r} contains a NUL byte; remove it")
    return _pad(raw + b"\x00")


def encode_message(msg: OscMessage) -> bytes:
    """Encode one message to its exact OSC 1.0 bytes.

    Raises:
        OscEncodeError: the address does not start with ``/``, an int does not
            fit int32, or an argument has an unsupported type.
    """
    if not msg.address.startswith("/"):
        raise OscEncodeError(f"OSC address {msg.address!r} must start with '/'")
    parts = [_osc_string(msg.address), _osc_string("," + msg.typetags)]
    for a in msg.args:
        if a is True or a is False or a is None:
            continue
        if isinstance(a, int):
            if not INT32_RANGE[0] <= a <= INT32_RANGE[1]:
                raise OscEncodeError(f"OSC int {a} is outside int32 {INT32_RANGE}; send it as a float")
            parts.append(struct.pack(">i", a))
        elif isinstance(a, float):
            parts.append(struct.pack(">f", a))
        elif isinstance(a, str):
            parts.append(_osc_string(a))
        else:
            blob = bytes(a)
            parts.append(struct.pack(">i", len(blob)) + _pad(blob))
    return b"".join(parts)


def encode_bundle(elements: Sequence[OscMessage | OscBundle], timetag: int = IMMEDIATELY) -> bytes:
    """Encode a bundle with an NTP ``timetag`` (see :func:`ntp_timetag`)."""
    if not 0 <= timetag < 2**64:
        raise OscEncodeError(f"OSC time tag {timetag} is outside 0 .. 2**64-1")
    parts = [BUNDLE_TAG, struct.pack(">Q", timetag)]
    for e in elements:
        body = encode_bundle(e.elements, e.timetag) if isinstance(e, OscBundle) else encode_message(e)
        parts.append(struct.pack(">i", len(body)) + body)
    return b"".join(parts)


def encode(packet: OscMessage | OscBundle) -> bytes:
    return encode_bundle(packet.elements, packet.timetag) if isinstance(packet, OscBundle) else encode_message(packet)


def ntp_timetag(unix_time_s: float) -> int:
    """Unix time in seconds -> 64-bit NTP time tag (OSC 1.0 "Time tags")."""
    ntp = unix_time_s + NTP_UNIX_OFFSET_S
    seconds = int(ntp)
    frac = int(round((ntp - seconds) * 2**32))
    if frac >= 2**32:
        seconds, frac = seconds + 1, frac - 2**32
    return (seconds << 32) | frac


def timetag_to_unix(timetag: int) -> float:
    """64-bit NTP time tag -> Unix time in seconds (``IMMEDIATELY`` -> 0.0)."""
    if timetag == IMMEDIATELY:
        return 0.0
    return (timetag >> 32) - NTP_UNIX_OFFSET_S + (timetag & 0xFFFFFFFF) / 2**32


# ----------------------------------------------------------------------------- decoding
def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise OscParseError(f"unterminated OSC string at byte {pos}")
    try:
        s = data[pos:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscParseError(f"OSC string at byte {pos} is not UTF-8") from None
    nxt = end + 1
    nxt += -nxt % 4
    if nxt > len(data):
        raise OscParseError(f"OSC string at byte {pos} is not padded to 4 bytes")
    return s, nxt


def _need(data: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(data):
        raise OscParseError(f"OSC {what} at byte {pos} needs {n} bytes, {len(data) - pos} left")


def decode_message(data: bytes) -> OscMessage:
    """Decode one OSC message.

    Raises:
        OscParseError: malformed bytes (with the byte offset) or an unknown type tag.
    """
    if not data.startswith(b"/"):
        raise OscParseError(f"OSC message must start with '/', got {data[:8]!r}")
    address, pos = _read_string(data, 0)
    if pos >= len(data):
        return OscMessage(address, ())  # OSC 1.0 allows a missing type-tag string
    tags, pos = _read_string(data, pos)
    if not tags.startswith(","):
        raise OscParseError(f"OSC type tags {tags!r} of {address} must start with ','")
    args: list = []
    for t in tags[1:]:
        if t == "i":
            _need(data, pos, 4, "int32")
            args.append(struct.unpack_from(">i", data, pos)[0]); pos += 4
        elif t == "f":
            _need(data, pos, 4, "float32")
            args.append(struct.unpack_from(">f", data, pos)[0]); pos += 4
        elif t == "h":
            _need(data, pos, 8, "int64")
            args.append(struct.unpack_from(">q", data, pos)[0]); pos += 8
        elif t in "dt":
            _need(data, pos, 8, "float64")
            args.append(struct.unpack_from(">d" if t == "d" else ">Q", data, pos)[0]); pos += 8
        elif t in "sS":
            s, pos = _read_string(data, pos)
            args.append(s)
        elif t == "b":
            _need(data, pos, 4, "blob size")
            n = struct.unpack_from(">i", data, pos)[0]; pos += 4
            _need(data, pos, n, "blob")
            args.append(bytes(data[pos:pos + n])); pos += n + (-n % 4)
        elif t == "T":
            args.append(True)
        elif t == "F":
            args.append(False)
        elif t == "N":
            args.append(None)
        elif t == "I":
            args.append(float("inf"))
        else:
            raise OscParseError(f"unknown OSC type tag {t!r} in {address} ,{tags[1:]}")
    if pos != len(data):
        raise OscParseError(f"{len(data) - pos} trailing bytes after OSC message {address}")
    return OscMessage(address, tuple(args))


def decode(data: bytes) -> OscMessage | OscBundle:
    """Decode a packet: a message or a (possibly nested) bundle.

    Raises:
        OscParseError: malformed bytes.
    """
    data = bytes(data)
    if not data.startswith(b"#bundle"):
        return decode_message(data)
    if not data.startswith(BUNDLE_TAG) or len(data) < 16:
        raise OscParseError("OSC bundle header must be '#bundle\\0' and an 8-byte time tag")
    timetag = struct.unpack_from(">Q", data, 8)[0]
    pos, elements = 16, []
    while pos < len(data):
        _need(data, pos, 4, "bundle element size")
        n = struct.unpack_from(">i", data, pos)[0]; pos += 4
        if n <= 0 or n % 4:
            raise OscParseError(f"OSC bundle element size {n} at byte {pos - 4} is not a positive multiple of 4")
        _need(data, pos, n, "bundle element")
        elements.append(decode(data[pos:pos + n])); pos += n
    return OscBundle(timetag, tuple(elements))


def iter_messages(packet: OscMessage | OscBundle) -> Iterable[tuple[int, OscMessage]]:
    """Flatten a packet into ``(timetag, message)`` pairs (``IMMEDIATELY`` for bare messages)."""
    if isinstance(packet, OscMessage):
        yield IMMEDIATELY, packet
        return
    for e in packet.elements:
        if isinstance(e, OscBundle):
            yield from iter_messages(e)
        else:
            yield packet.timetag, e
