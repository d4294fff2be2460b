"""A minimal writer of OLE compound files (CFB v3), enough to build Outlook .msg files in tests.

Every stream is smaller than 4096 bytes, so all of them live in the mini stream; the directory
is one storage (the root) whose children hang off a chain of right siblings.
"""

from __future__ import annotations

import struct

SECTOR, MINI = 512, 64
FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
    raw = (name + "\0").encode("utf-16-le") if name else b""
    return (
        raw.ljust(64, b"\0")
        + struct.pack("<HBB", len(raw), kind, 1)
        + struct.pack("<III", NOSTREAM, right, child)
        + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
        + struct.pack("<IQ", start, size)
    )


def write_cfb(streams: dict[str, bytes]) -> bytes:
    """Bytes of a compound file holding `streams` (name -> data, each < 4096 bytes) at its root."""
    names = list(streams)
    mini = bytearray()
    minifat: list[int] = []
    starts = []
    for name in names:
        data = streams[name]
        assert len(data) < 4096, name
        n = max(1, -(-len(data) // MINI))
        first = len(minifat)
        starts.append(first)
        minifat += [first + k + 1 for k in range(n - 1)] + [END]
        mini += data.ljust(n * MINI, b"\0")
    entries = [_entry("Root Entry", 5, NOSTREAM, 1 if names else NOSTREAM, 0, len(mini))]
    for i, name in enumerate(names):
        right = i + 2 if i + 1 < len(names) else NOSTREAM
        entries.append(_entry(name, 2, right, NOSTREAM, starts[i], len(streams[name])))
    while len(entries) % 4:
        entries.append(b"\0" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", NOSTREAM, NOSTREAM, NOSTREAM)
                       + b"\0" * 36 + struct.pack("<IQ", 0, 0))  # fmt: skip
    dir_sectors = len(entries) // 4
    minifat_bytes = b"".join(struct.pack("<I", x) for x in minifat)
    minifat_sectors = max(1, -(-len(minifat_bytes) // SECTOR))
    mini_sectors = -(-len(mini) // SECTOR)
    # layout: [FAT][directory...][miniFAT...][mini stream...]
    first_dir = 1
    first_minifat = first_dir + dir_sectors
    first_mini = first_minifat + minifat_sectors
    total = first_mini + mini_sectors
    assert total <= 128, "one FAT sector only"
    fat = [FREE] * 128
    fat[0] = FATSECT

    def chain(start: int, n: int) -> None:
        for k in range(n):
            fat[start + k] = start + k + 1 if k + 1 < n else END

    chain(first_dir, dir_sectors)
    chain(first_minifat, minifat_sectors)
    chain(first_mini, mini_sectors)
    entries[0] = _entry("Root Entry", 5, NOSTREAM, 1 if names else NOSTREAM, first_mini if mini else END, len(mini))
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
        + struct.pack("<IIII", 0, 1, first_dir, 0)
        + struct.pack("<IIIII", 4096, first_minifat, minifat_sectors, END, 0)
        + struct.pack("<I", 0) + struct.pack("<I", FREE) * 108
    )
    assert len(header) == SECTOR
    body = b"".join(struct.pack("<I", x) for x in fat)
    body += b"".join(entries)
    body += minifat_bytes.ljust(minifat_sectors * SECTOR, b"\xff")
    body += bytes(mini).ljust(mini_sectors * SECTOR, b"\0")
    return header + body


def write_msg(subject: str, sender: str, to: str, body: str) -> bytes:
    """An Outlook .msg (Unicode string properties) with subject, sender, recipients and plain body."""

    def prop(tag: str, text: str) -> tuple[str, bytes]:
        return f"__substg1.0_{tag}001F", text.encode("utf-16-le")

    streams = dict([prop("0037", subject), prop("0C1F", sender), prop("0E04", to), prop("1000", body)])
    streams["__properties_version1.0"] = b"\0" * 32
    return write_cfb(streams)
