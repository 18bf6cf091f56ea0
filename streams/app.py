"""The one CLI entry point (``clvstream ...``, also ``python -m streams.app ...``).

``clvstream worker`` runs a live worker (the Faust app of ``worker.py``); the custom
commands (demo, rebuild, topics, ...) are registered with ``@app.command`` in
``commands.py``. Importing them here, not in ``worker.py``, keeps the worker free of
the CLI: no import circle app -> commands -> app.
"""
from __future__ import annotations

from .worker import app, settings, topology  # noqa: F401  (importable from here, as before)
from . import commands  # noqa: F401  (registers the @app.command functions)


def main() -> None:
    app.main()


if __name__ == "__main__":
    main()
