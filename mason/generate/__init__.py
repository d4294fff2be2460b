"""Synthetic data generation (teacher LLM, judge, filters). Config only in this version."""

from mason.generate.config import GenerateConfig

__all__ = ["GenerateConfig"]
