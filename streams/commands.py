"""Custom CLI commands (registered on the Faust app)."""
from __future__ import annotations

from .app import app, settings
from faust.cli import option

from .settings import settings_table


@app.command()
async def show_settings(self) -> None:
    """Print every setting with its environment variable and default."""
    print(settings_table())


@app.command(
    option("--customers", type=int, default=2000, help="Initial customer population."),
    option("--rate", type=float, default=500.0, help="Events per second."),
    option("--partitions", type=int, default=4, help="Partitions of the demo topics."),
    option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C)."),
    option("--seed", type=int, default=7, help="Generator seed (same seed, same customers)."),
)
async def demo(self, customers: int, rate: float, partitions: int, duration, seed: int) -> None:
    """Run the engine end to end on an embedded broker with generated traffic."""
    from .demo import run

    # The demo owns this process: run it in the foreground so Ctrl-C reaches it.
    run(customers=customers, rate=rate, partitions=partitions, duration=duration, seed=seed,
        web_port=settings.web_port)
