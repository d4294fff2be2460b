"""A hostile-input documents folder: links out of it, zip bombs, entity attacks, broken and endless files.

`hostile_folder` returns the folder and, for each file, the skip kind the ingest stage must give
it (None: read normally). `SECRET` is in a file outside the folder that links point at: it must
never reach documents.jsonl or chunks.jsonl (nor must /etc/passwd).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

SECRET = "TOPSECRET-4f1c9a7e"
PASSWD_MARK = "root:x:0:0"

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def _docx(path: Path, document_xml: str | None = None, *, bomb_mb: int = 0) -> Path:
    """A minimal DOCX; with `bomb_mb`, word/document.xml is a valid paragraph followed by that many MB of spaces."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        if bomb_mb:
            with z.open("word/document.xml", "w", force_zip64=True) as f:
                f.write(f'<?xml version="1.0"?><w:document {_W}><w:body><w:p><w:r><w:t>'.encode())
                block = b" " * (1 << 20)
                for _ in range(bomb_mb):
                    f.write(block)
                f.write(b"</w:t></w:r></w:p></w:body></w:document>")
        else:
            z.writestr("word/document.xml", document_xml or "")
    return path


def hostile_folder(root: Path, *, bomb_mb: int = 20) -> tuple[Path, dict[str, str | None]]:
    """Build the folder under `root` (see module docstring): (folder, {relative path: expected skip kind})."""
    from mason.scaffold.corpus import write_pdf

    outside = root / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text(f"The key is {SECRET}.\n")
    (outside / "private").mkdir()
    (outside / "private" / "notes.md").write_text(f"# Private\n\n{SECRET} in a folder.\n")
    docs = root / "docs"
    docs.mkdir()
    expected: dict[str, str | None] = {}

    (docs / "good.md").write_text("# Good\n\nThe buoy is yellow and floats.\n")
    expected["good.md"] = None
    os.symlink(docs / "good.md", docs / "alias.md")  # a link inside the folder is fine
    expected["alias.md"] = None
    os.symlink(outside / "secret.txt", docs / "secret.txt")
    expected["secret.txt"] = "unsafe"
    os.symlink("/etc/passwd", docs / "passwd.txt")
    expected["passwd.txt"] = "unsafe"
    os.symlink(outside / "private", docs / "private")  # a linked folder is never entered
    os.symlink(docs / "missing.md", docs / "dangling.md")
    expected["dangling.md"] = "unsafe"
    os.mkfifo(docs / "pipe.txt")
    expected["pipe.txt"] = "unsafe"

    _docx(docs / "bomb.docx", bomb_mb=bomb_mb)
    expected["bomb.docx"] = "unsafe"
    xxe = (f'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file://{outside / "secret.txt"}">]>'
           f"<w:document {_W}><w:body><w:p><w:r><w:t>Hello &xxe; world</w:t></w:r></w:p></w:body></w:document>")  # fmt: skip
    _docx(docs / "xxe.docx", xxe)
    expected["xxe.docx"] = None  # read, without the entity
    (docs / "xxe.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><d><p>&xxe;</p></d>'
    )
    expected["xxe.xml"] = "corrupt"
    laughs = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    ) + "]><l>&j;</l>"
    (docs / "laughs.xml").write_text(laughs)
    expected["laughs.xml"] = "corrupt"

    good_pdf = write_pdf(root / "good.pdf", "Manual", [("A", ["Some text."] * 30)]).read_bytes()
    (docs / "truncated.pdf").write_bytes(good_pdf[: len(good_pdf) // 3])
    expected["truncated.pdf"] = "corrupt"
    (docs / "empty.txt").write_bytes(b"")
    expected["empty.txt"] = "empty"
    (docs / "garbage.docx").write_bytes(os.urandom(4096))
    expected["garbage.docx"] = "corrupt"
    (docs / "garbage.xlsx").write_bytes(b"PK\x03\x04" + os.urandom(4096))
    expected["garbage.xlsx"] = "corrupt"
    (docs / "deep.html").write_text("<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 5000 + "</body></html>")
    expected["deep.html"] = "corrupt"
    with open(docs / "huge.txt", "wb") as f:  # sparse: no disk used
        f.truncate(3 << 20)
    expected["huge.txt"] = "too_large"
    return docs, expected
