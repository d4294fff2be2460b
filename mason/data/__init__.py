"""Datasets at the edges: read and write JSONL/JSON files in common formats, and validate them.

Importing this package is cheap (stdlib only); `mason.data.validate` loads the quality
heuristics only when a dataset is validated.
"""

from __future__ import annotations

from mason.data.files import load_dataset, write_dataset
from mason.data.formats import FORMATS, detect_format, from_contract, to_contract

__all__ = ["FORMATS", "detect_format", "from_contract", "load_dataset", "to_contract", "write_dataset"]
