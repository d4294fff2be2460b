"""Config of the curation stage: the `curation` section of pipeline.yaml."""

from __future__ import annotations

from pydantic import Field

from mason.core.config import Section


class CurationConfig(Section):
    """Optional human review of samples in a terminal UI before training."""

    interactive: bool = Field(False, description="Open the terminal UI to vet, edit, approve or reject samples.")
    require_approval: bool = Field(
        False, description="Train only on samples a person approved (otherwise unrejected samples pass)."
    )
