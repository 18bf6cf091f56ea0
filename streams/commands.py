"""Custom CLI commands (registered on the Faust app)."""
from __future__ import annotations

from .app import app, settings
from .settings import settings_table


@app.command()
async def show_settings(self) -> None:
    """Print every setting with its environment variable and default."""
    print(settings_table())
