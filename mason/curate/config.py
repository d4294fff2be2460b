"""Config of the curation stage: the `curation` section of pipeline.yaml."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from mason.core.config import Section


class CurationConfig(Section):
    """Human review of the generated samples before training (task `curate`).

    With the section present (and `enabled`), training reads the curated dataset. In a terminal,
    `mason run` opens the curation UI when it reaches the task; without one (CI, a pipe, `--no-input`)
    it applies the decisions saved so far and the `undecided` policy, and says what it did.
    """

    #: how the task runs, not what it makes: opening the UI or not re-keys nothing (the decisions' digest does)
    NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"interactive", "decisions"})

    enabled: bool = Field(True, description="Curate before training. `false` is the same as no section: hands-off.")
    interactive: bool | Literal["auto"] = Field(
        "auto", description="Open the terminal UI when `mason run` reaches the task: `auto` = when run in a terminal "
                            "(not with `--no-input`); `false` = never (apply saved decisions only).")
    undecided: Literal["keep", "drop", "fail"] = Field(
        "keep", description="What trains from samples nobody decided: `keep` them, `drop` them (train only on "
                            "approved samples), or `fail` the run until every sample is decided.")
    require_approval: bool = Field(
        False, description="Train only on samples a person approved (the same as `undecided: drop`).")
    decisions: str = Field(
        "curation.sqlite", description="The decisions file (SQLite, relative to the YAML's folder): your review "
                                       "work, kept outside the workspace so cleaning the workspace never loses it.")

    def policy(self) -> str:
        """The undecided policy in effect (`require_approval` means drop)."""
        return "drop" if self.require_approval else self.undecided
