"""Which files of a local source are documents: the glob, `exclude`, hidden and lock files, and links.

A symbolic link inside the documents folder that leads out of it (to `/etc/passwd`, to another
user's files) is never followed: `check_file` refuses it with a reason, as it refuses anything
that is not a regular file (a FIFO would block the run forever, a device never ends). Folders
that are links are not entered at all (`os.walk` does not follow them).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from mason.core.errors import InputError
from mason.ingest.config import SourceConfig
from mason.ingest.parsers import ParseError


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (`*`, `?`, `[..]`, `**` across folders) into a full-path regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class _Excluder:
    """`exclude` patterns: a pattern matches the relative path, any of its parent folders
    (`drafts` skips everything under drafts/), or, without a `/`, the file name at any depth
    (`*.tmp`)."""

    def __init__(self, patterns: list[str]):
        self.rules = []
        for p in patterns:
            p = p.strip().removeprefix("./").strip("/")
            if p:
                self.rules.append((_glob_regex(p), "/" not in p))

    def __call__(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        for rx, name_only in self.rules:
            if any(rx.match(p) for p in prefixes) or (name_only and any(rx.match(x) for x in parts)):
                return True
        return False


def source_folder(cfg: SourceConfig, base_dir: Path) -> Path:
    """The documents folder (or single file) of `cfg`, resolved against `base_dir`.

    Raises InputError when it does not exist.
    """
    path = Path(cfg.path or ".").expanduser()
    root = (path if path.is_absolute() else Path(base_dir) / path).resolve()
    if not root.exists():
        raise InputError(
            f"documents folder not found: {root}",
            hint=(
                f"create it and put your documents there, or set `knowledge_source.path` "
                f"(relative paths resolve against {Path(base_dir).resolve()})"
            ),
        )
    return root


def _is_saved_page_asset(rel_parts: list[str], root: Path) -> bool:
    """Inside `page_files/` next to `page.html`: the images/scripts of a saved web page."""
    for k, part in enumerate(rel_parts[:-1]):
        if part.endswith("_files"):
            parent = root.joinpath(*rel_parts[:k])
            stem = part[: -len("_files")]
            if any((parent / f"{stem}{ext}").is_file() for ext in (".html", ".htm", ".xhtml")):
                return True
    return False


def select_files(cfg: SourceConfig, base_dir: Path) -> tuple[Path, list[Path]]:
    """The documents to ingest: (folder, files sorted by relative path).

    Skips hidden files and folders (including the `.mason` workspace), Office lock files
    (`~$x.docx`), the asset folders of saved web pages, and `exclude` matches. Folders that are
    symbolic links are not entered; files that are links stay in the list (`check_file` refuses
    those that lead out of the folder, with a reason). Raises InputError when the folder does not exist.
    """
    root = source_folder(cfg, base_dir)
    if root.is_file():
        return root.parent, [root]
    include = _glob_regex(cfg.glob.strip().removeprefix("./"))
    excluded = _Excluder(cfg.exclude)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # prune in place so os.walk never descends into hidden folders (.git, .mason, ...)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not excluded(prefix + d)]
        for name in filenames:
            rel = prefix + name
            if name.startswith((".", "~$")) or not include.match(rel) or excluded(rel):
                continue
            if "_files/" in rel and _is_saved_page_asset(rel.split("/"), root):
                continue
            found.append((rel, Path(dirpath) / name))
    found.sort(key=lambda item: item[0])
    return root, [p for _, p in found]


def check_file(path: Path, root: Path) -> None:
    """Refuse a selected file that is a link out of `root` or not a regular file.

    Raises ParseError("unsafe") with the reason.
    """
    path = Path(path)
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise ParseError("unsafe", "broken or looping symbolic link; not followed") from None
        if not target.is_relative_to(root):
            raise ParseError("unsafe", f"symbolic link to {target}, outside the documents folder; not followed")
        path = target
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise ParseError("corrupt", f"cannot read file ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise ParseError("unsafe", "not a regular file (a pipe, socket or device); not read")


def listing(root: Path, files: list[Path]) -> list[list]:
    """[[relative path, size, mtime_ns], ...] of `files`, no hashing (links out of `root`: the link's own)."""
    out = []
    for p in files:
        try:
            st = p.stat() if not p.is_symlink() or p.resolve().is_relative_to(root) else p.lstat()
        except OSError:
            st = p.lstat()
        out.append([p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return out
