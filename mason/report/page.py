"""The page shell of the HTML reports: one stylesheet, so every report looks like the others."""

from __future__ import annotations

import base64
from pathlib import Path

#: the reports' stylesheet (inline in each page, so a report is one self-contained file)
CSS = """
:root { --ok:#1a7f37; --warn:#9a6700; --fail:#cf222e; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 940px; margin: 2rem auto; padding: 0 1.2rem; }
h1 { font-size: 1.55rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.ok { --c: var(--ok); } .warn { --c: var(--warn); } .fail { --c: var(--fail); }
.badge { display: inline-block; padding: .1rem .7rem; border-radius: 1rem; color: #fff; background: var(--c);
         font-weight: 600; font-size: .8rem; letter-spacing: .04em; }
ul.verdicts { list-style: none; padding: 0; margin: 0; }
ul.verdicts li { border-left: 4px solid var(--c); background: var(--bg); padding: .5rem .8rem; margin: .45rem 0;
                 border-radius: 0 6px 6px 0; }
.lvl { color: var(--c); font-weight: 700; font-size: .8rem; margin-right: .5rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; } table.kv th { width: 14rem; }
td.n { font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1rem 0 1.4rem; }
figure img { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption, .note { color: var(--muted); font-size: .85rem; }
"""


def png_data(path: Path) -> str:
    """A PNG file as base64 text for an inline `data:image/png;base64,` image."""
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")
