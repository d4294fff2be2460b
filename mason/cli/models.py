"""`mason models`: list the built-in models, usable offline as `base_model:`.

The command body is `models_command`; the CLI registers it as
`app.command("models")(handles_errors(models_command))`.
"""

from __future__ import annotations

import typer


def models_command() -> None:
    """List the built-in models (usable offline as `base_model:`)."""
    from mason.models import BUILTIN_MODELS

    for name, model in BUILTIN_MODELS.items():
        typer.echo(f"{name}\t{getattr(model, 'description', '')}")
