"""The data layer: samples of the data contract, shared by every stage that reads or writes them.

`formats`/`files` read and write JSONL/JSON datasets in common formats; `samples` loads them into
`Sample`s (file and line kept; lists and globs of files, chat logs collapsed) and splits them; `chat` renders a sample with the tokenizer's chat
template and tokenizes it with its loss mask; `quality`, `grounding` and `contamination` are the
sample checks (generation filters, `mason validate` and the evaluation use the same ones); `answers`
matches key spans of answers; `validate` is `mason validate`, and `gate` its checks as the quality
gate training runs on your own data.

Importing this package is cheap (stdlib only); the submodules load what they need.
"""

from __future__ import annotations

from mason.data.files import load_dataset, write_dataset
from mason.data.formats import FORMATS, detect_format, from_contract, to_contract

__all__ = ["FORMATS", "detect_format", "from_contract", "load_dataset", "to_contract", "write_dataset"]
