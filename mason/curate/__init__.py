"""Interactive curation of generated samples. Config only in this version."""

from mason.curate.config import CurationConfig

__all__ = ["CurationConfig"]
