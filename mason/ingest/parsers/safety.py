"""Checks that keep hostile files from costing more than they are worth: zip bombs, files too large.

Zip-based formats (DOCX, PPTX, XLSX, EPUB, ODT...) are checked from the archive's central
directory before any member is read: the total unpacked size must stay under the file limit
(`max_file_mb`) and no large member may be packed more tightly than a real document is. Python's
`zipfile` never inflates a member past the size its header declares (the CRC check fails
instead), so checking the declared sizes is enough.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mason.ingest.parsers.base import ParseError, options

#: members that unpack to more than this are checked for their compression ratio
BOMB_MEMBER_BYTES = 10 << 20
#: deflate packs real XML 5-30x; a member packed tighter than this is a zip bomb
BOMB_RATIO = 100


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB"


def check_zip(path: Path, fmt: str, archive: zipfile.ZipFile | None = None) -> None:
    """Raise ParseError("unsafe") when the zip at `path` would unpack to too much (see module doc).

    Raises ParseError("corrupt") when it is not a readable zip archive.
    """
    limit = options().max_file_bytes
    try:
        z = archive or zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ParseError("corrupt", f"damaged {fmt} file ({e})") from None
    try:
        total = 0
        for info in z.infolist():
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > BOMB_MEMBER_BYTES and ratio > BOMB_RATIO:
                raise ParseError(
                    "unsafe",
                    f"zip bomb: {fmt} member {info.filename!r} unpacks to {_mb(info.file_size)} "
                    f"({ratio:.0f}x its packed size); not read",
                )
        if total > limit:
            raise ParseError(
                "unsafe",
                f"zip bomb: {fmt} unpacks to {_mb(total)}, over the {_mb(limit)} limit "
                "(knowledge_source.max_file_mb); not read",
            )
    finally:
        if archive is None:
            z.close()


def read_member(z: zipfile.ZipFile, name: str, fmt: str) -> bytes:
    """Bytes of one member, refusing members over the file limit. Raises ParseError / KeyError."""
    info = z.getinfo(name)
    if info.file_size > options().max_file_bytes:
        raise ParseError("unsafe", f"zip bomb: {fmt} member {name!r} unpacks to {_mb(info.file_size)}; not read")
    return z.read(info)


def check_size(path: Path) -> None:
    """Raise ParseError("too_large") when the file is over the limit (`max_file_mb`)."""
    limit = options().max_file_bytes
    size = Path(path).stat().st_size
    if size > limit:
        raise ParseError(
            "too_large", f"file is {_mb(size)}, over the {_mb(limit)} limit (knowledge_source.max_file_mb)"
        )
