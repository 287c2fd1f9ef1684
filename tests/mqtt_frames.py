"""MQTT 3.1.1 framing for tests that speak the protocol on raw sockets: the remaining
length (section 2.2.3) and the split of a byte stream into packets."""

from __future__ import annotations


def remaining_length(size: int) -> bytes:
    """*size* as MQTT's variable byte integer, in its fewest bytes."""
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        out.append(digit | (0x80 if size else 0))
        if not size:
            return bytes(out)


def split_packets(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole packets at the start of *data*, each as (first byte, body), and the bytes
    of an incomplete last one."""
    packets: list[tuple[int, bytes]] = []
    while len(data) >= 2:
        size, shift, at = 0, 0, 1
        while at < len(data) and data[at] & 0x80:
            size |= (data[at] & 0x7F) << shift
            shift, at = shift + 7, at + 1
        if at >= len(data):
            break
        size |= data[at] << shift
        end = at + 1 + size
        if len(data) < end:
            break
        packets.append((data[0], data[at + 1 : end]))
        data = data[end:]
    return packets, data


def connect_packet(client_id: str, username: str | None = None, password: str = "") -> bytes:
    """A clean-session MQTT 3.1.1 CONNECT with a 300 s keep-alive; with *username*, the
    user name and *password* too."""
    ident = client_id.encode()
    flags, fields = 0x02, len(ident).to_bytes(2, "big") + ident
    if username is not None:
        flags |= 0xC0
        for field in (username.encode(), password.encode()):
            fields += len(field).to_bytes(2, "big") + field
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x01\x2c" + fields
    return b"\x10" + remaining_length(len(body)) + body
