"""Layer 1 of the bridge: OSC 1.0 messages and bundles as bytes, no sockets, on python-osc.

python-osc (``pythonosc``) does the OSC 1.0 work: :class:`OscMessageBuilder` and
:class:`OscBundleBuilder` write the bytes, its ``OscMessage`` and ``OscBundle``
parse them, and ``pythonosc.parsing.ntp`` converts Unix time to NTP time tags.
This module adds the bridge's value types (frozen, comparable :class:`OscMessage`
and :class:`OscBundle`) and only what python-osc 1.10.2 lacks or does otherwise:

* **Explicit type tags.** Python types map to tags by one rule: ``int`` -> ``i``
  (int32), ``float`` -> ``f``, ``str`` -> ``s``, ``bytes`` -> ``b``,
  ``True``/``False`` -> ``T``/``F``, ``None`` -> ``N``; anything else is an
  :class:`~mixbridge.bridge.errors.OscEncodeError`. python-osc would guess: an
  int of more than 31 bits (``-2**31`` included) silently becomes ``h`` (int64,
  not the ``i`` a DAW method is registered for), a 4-tuple becomes MIDI, a list an
  array. An int outside int32 is refused by name, as is a NUL inside a string
  (python-osc would write it, and the receiver would read a truncated string).
  python-osc refuses an empty blob; that surfaces as ``OscEncodeError`` too.
* **Exact 64-bit time tags.** python-osc takes bundle times as float Unix seconds
  (and uses ``0`` for "immediately"); here a time tag is the exact NTP integer
  (``IMMEDIATELY`` is ``1``, as on the wire), spliced into the bundle header after
  python-osc framed the elements, and read back exactly when parsing.
* **Strict parsing, nothing dropped silently.** python-osc skips an unknown type
  tag with a log line (misreading the arguments after it), drops a bundle element
  it cannot identify with a log line, and loops forever on a negative element
  size. So a datagram is checked first (type tags, bundle element sizes and
  kinds), and every failure, python-osc's own ``ParseError``, undecodable UTF-8
  and absurd nesting included, raises :class:`~mixbridge.bridge.errors.OscParseError` naming the size
  and first bytes, which receivers count. Decodable tags: ``ifhdsbtTFN`` (``t``
  arguments come back as python-osc's ``(datetime, fraction)`` pair). By default
  python-osc's leniency stays for DAW feedback: bytes after the last argument are
  ignored, and a final float cut short is zero-padded (Reaktor sends those).
  ``strict=True`` (the live bus's control port) refuses both: every type tag must
  have exactly its bytes, so a ``,f`` with no data is an error, never a made-up 0.0.

Wire format: OSC 1.0 ("The Open Sound Control 1.0 Specification", opensoundcontrol.org).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pythonosc import osc_bundle, osc_bundle_builder, osc_message, osc_message_builder
from pythonosc.parsing import ntp, osc_types

from .errors import OscEncodeError, OscParseError

#: NTP epoch (1900-01-01) to Unix epoch (1970-01-01), in seconds (RFC 5905).
NTP_UNIX_OFFSET_S = 2208988800
#: The OSC time tag that means "dispatch immediately" (OSC 1.0 spec), as on the wire.
IMMEDIATELY = 1
BUNDLE_TAG = b"#bundle\x00"
INT32_RANGE = (-(2**31), 2**31 - 1)
#: Type tags :func:`decode` accepts: those python-osc parses, less arrays, RGBA and MIDI.
DECODABLE_TAGS = frozenset("ifhdsbtTFN")
#: What parsing can raise besides OscParseError: python-osc's errors, undecodable UTF-8, and (for
#: bundles nested thousands deep, which both parsers walk recursively) RecursionError.
_PARSE_FAILURES = (osc_types.ParseError, osc_message.ParseError, osc_bundle.ParseError, UnicodeDecodeError,
                   RecursionError)


@dataclass(frozen=True)
class OscMessage:
    """One OSC message: an address such as ``/strip/gain`` and its arguments."""

    address: str
    args: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))

    @property
    def typetags(self) -> str:
        """The OSC type tag string of :attr:`args` (without the leading comma), e.g. ``"if"``."""
        return "".join(_tag(a) for a in self.args)

    def __str__(self) -> str:
        return f"{self.address} ,{self.typetags} " + " ".join(_fmt(a) for a in self.args)


@dataclass(frozen=True)
class OscBundle:
    """A bundle: an NTP time tag and its elements (messages or nested bundles)."""

    timetag: int
    elements: tuple

    def messages(self) -> list[OscMessage]:
        """Every message of the bundle, nested bundles flattened, in order."""
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
    """The OSC type tag of one argument, by the rule above (python-osc would guess)."""
    if a is True or a is False or a is None:
        return {True: "T", False: "F", None: "N"}[a]
    for types, tag in ((int, "i"), (float, "f"), (str, "s"), ((bytes, bytearray), "b")):
        if isinstance(a, types):
            return tag
    raise OscEncodeError(
        f"OSC argument {a!r} has type {type(a).__name__}; use int, float, str, bytes, bool or None"
    )


# ----------------------------------------------------------------------------- encoding
def encode_message(msg: OscMessage) -> bytes:
    """Encode one message to its exact OSC 1.0 bytes (built by python-osc).

    Raises:
        OscEncodeError: the address does not start with ``/``, an int does not
            fit int32, a string holds a NUL, a float overflows float32, a blob
            is empty, or an argument has an unsupported type.
    """
    return _build_message(msg).dgram


def _build_message(msg: OscMessage) -> osc_message.OscMessage:
    if not msg.address.startswith("/"):
        raise OscEncodeError(f"OSC address {msg.address!r} must start with '/'")
    if "\x00" in msg.address:
        raise OscEncodeError(f"OSC address {msg.address!r} contains a NUL byte; remove it")
    builder = osc_message_builder.OscMessageBuilder(msg.address)
    for a in msg.args:
        tag = _tag(a)
        if tag == "i" and not INT32_RANGE[0] <= a <= INT32_RANGE[1]:
            raise OscEncodeError(f"OSC int {a} is outside int32 {INT32_RANGE}; send it as a float")
        if tag == "s" and "\x00" in a:
            raise OscEncodeError(f"OSC string {a!r} contains a NUL byte; remove it")
        builder.add_arg(bytes(a) if tag == "b" else a, tag)
    try:
        return builder.build()
    except (osc_message_builder.BuildError, OverflowError) as e:
        raise OscEncodeError(f"cannot encode OSC message {msg}: {e}") from e


def encode_bundle(elements: Sequence[OscMessage | OscBundle], timetag: int = IMMEDIATELY) -> bytes:
    """Encode a bundle with an exact NTP ``timetag`` (see :func:`ntp_timetag`).

    python-osc frames the elements; the 8-byte time tag is then written exactly,
    since python-osc's builder only takes float Unix seconds.
    """
    if not 0 <= timetag < 2**64:
        raise OscEncodeError(f"OSC time tag {timetag} is outside 0 .. 2**64-1")
    builder = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
    for e in elements:
        if isinstance(e, OscBundle):
            builder.add_content(osc_bundle.OscBundle(encode_bundle(e.elements, e.timetag)))
        else:
            builder.add_content(_build_message(e))
    dgram = builder.build().dgram
    return BUNDLE_TAG + struct.pack(">Q", timetag) + dgram[len(BUNDLE_TAG) + 8:]


def encode(packet: OscMessage | OscBundle) -> bytes:
    """Encode a message or a bundle (:func:`encode_message` / :func:`encode_bundle`)."""
    return encode_bundle(packet.elements, packet.timetag) if isinstance(packet, OscBundle) else encode_message(packet)


def ntp_timetag(unix_time_s: float) -> int:
    """Unix time in seconds -> 64-bit NTP time tag (python-osc's conversion).

    Raises:
        OscEncodeError: the time is before 1900 or after the NTP era ends (2036).
    """
    try:
        return struct.unpack(">Q", ntp.system_time_to_ntp(unix_time_s))[0]
    except (struct.error, ntp.NtpError) as e:
        raise OscEncodeError(f"Unix time {unix_time_s} s has no NTP time tag (1900 .. 2036): {e}") from e


def timetag_to_unix(timetag: int) -> float:
    """64-bit NTP time tag -> Unix time in seconds (``IMMEDIATELY`` -> 0.0)."""
    if timetag == IMMEDIATELY:
        return 0.0
    return ntp.ntp_to_system_time(struct.pack(">Q", timetag))


# ----------------------------------------------------------------------------- decoding
#: Argument sizes in bytes of the fixed-size type tags (OSC 1.0); ``s`` and ``b`` are sized by content.
_FIXED_SIZES = {"i": 4, "f": 4, "h": 8, "d": 8, "t": 8, "T": 0, "F": 0, "N": 0}


def _check_arguments(dgram: bytes, address: str, tags: str, pos: int) -> None:
    """Strict framing: each tag's argument bytes are all there, and nothing follows the last one."""
    size = len(dgram)
    for k, tag in enumerate(tags):
        if tag in _FIXED_SIZES:
            need = _FIXED_SIZES[tag]
        elif tag == "s":
            end = dgram.find(b"\x00", pos)
            need = -1 if end < 0 else (end - pos) // 4 * 4 + 4
        else:  # "b": an int32 size, then the data padded to 4 bytes
            blob = int.from_bytes(dgram[pos:pos + 4], "big", signed=True) if pos + 4 <= size else -1
            need = -1 if blob < 0 else 4 + (blob + 3) // 4 * 4
        if need < 0 or pos + need > size:
            raise OscParseError(f"OSC argument {k + 1} (type tag {tag!r}) of {address} ,{tags} has "
                                f"{max(size - pos, 0)} of its bytes; the sender must send the whole value")
        pos += need
    if pos != size:
        raise OscParseError(f"OSC message {address} ,{tags} has {size - pos} bytes after its last argument")


def _check_message(dgram: bytes, strict: bool = False) -> None:
    """Refuse a message python-osc would misread: no leading '/', an unknown type tag; with ``strict``,
    an argument cut short or bytes after the last argument (see the module docstring)."""
    if not osc_message.OscMessage.dgram_is_message(dgram):
        raise OscParseError(f"OSC packet must start with '/' or {BUNDLE_TAG!r}, got {dgram[:8]!r}")
    address, pos = osc_types.get_string(dgram, 0)
    if pos >= len(dgram):
        return  # OSC 1.0 allows a missing type-tag string
    tags, pos = osc_types.get_string(dgram, pos)
    if not tags.startswith(","):
        raise OscParseError(f"OSC type tags {tags!r} of {address} must start with ','")
    unknown = sorted(set(tags[1:]) - DECODABLE_TAGS)
    if unknown:
        raise OscParseError(f"OSC type tag(s) {''.join(unknown)!r} in {address} {tags} are not decodable; "
                            f"known: {''.join(sorted(DECODABLE_TAGS))}")
    if strict:
        _check_arguments(dgram, address, tags[1:], pos)


def _check_bundle(dgram: bytes, strict: bool = False) -> None:
    """Check bundle framing before python-osc parses it (it would loop forever on a
    negative element size and drop an unidentifiable element with only a log line)."""
    if len(dgram) < len(BUNDLE_TAG) + 8:
        raise OscParseError(f"OSC bundle needs {BUNDLE_TAG!r} and an 8-byte time tag, got {len(dgram)} bytes")
    pos = len(BUNDLE_TAG) + 8
    while pos < len(dgram):
        size, pos = osc_types.get_int(dgram, pos)
        if size <= 0 or size % 4 or pos + size > len(dgram):
            raise OscParseError(f"OSC bundle element size {size} at byte {pos - 4} is not a positive multiple "
                                f"of 4 within the {len(dgram)}-byte bundle")
        element = dgram[pos:pos + size]
        (_check_bundle if osc_bundle.OscBundle.dgram_is_bundle(element) else _check_message)(element, strict)
        pos += size


def _from_python_osc(p: osc_message.OscMessage | osc_bundle.OscBundle) -> OscMessage | OscBundle:
    if isinstance(p, osc_bundle.OscBundle):
        timetag, _ = osc_types.get_uint64(p.dgram, len(BUNDLE_TAG))  # exact, unlike p.timestamp
        return OscBundle(timetag, tuple(_from_python_osc(e) for e in p))
    return OscMessage(p.address, tuple(p.params))


def _parse_error(data: bytes, e: Exception) -> OscParseError:
    return OscParseError(f"unparseable OSC datagram ({len(data)} bytes, starting {data[:16]!r}): {e}")


def decode_message(data: bytes, strict: bool = False) -> OscMessage:
    """Decode one OSC message (parsed by python-osc); ``strict`` refuses arguments cut short and
    trailing bytes (see the module docstring).

    Raises:
        OscParseError: malformed bytes or an unknown type tag.
    """
    data = bytes(data)
    try:
        _check_message(data, strict)
        msg = _from_python_osc(osc_message.OscMessage(data))
        assert isinstance(msg, OscMessage)  # a message parses to a message
        return msg
    except _PARSE_FAILURES as e:
        raise _parse_error(data, e) from e


def decode(data: bytes, strict: bool = False) -> OscMessage | OscBundle:
    """Decode a packet: a message or a (possibly nested) bundle (parsed by python-osc); ``strict``
    as in :func:`decode_message`, for every message of a bundle.

    Raises:
        OscParseError: malformed bytes.
    """
    data = bytes(data)
    if not osc_bundle.OscBundle.dgram_is_bundle(data):
        return decode_message(data, strict)
    try:
        _check_bundle(data, strict)
        return _from_python_osc(osc_bundle.OscBundle(data))
    except _PARSE_FAILURES as e:
        raise _parse_error(data, e) from e


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
