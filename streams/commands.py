"""Custom CLI commands (registered on the Faust app)."""
from __future__ import annotations

from .app import app, settings
import click
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
    option("--fit-after", type=float, default=30.0,
           help="Fit and publish BG/NBD + Gamma-Gamma parameters after this many seconds (0: never)."),
)
async def demo(self, customers: int, rate: float, partitions: int, duration, seed: int, fit_after: float) -> None:
    """Run the engine end to end on an embedded broker with generated traffic."""
    from .demo import run

    # The demo owns this process: run it in the foreground so Ctrl-C reaches it.
    run(customers=customers, rate=rate, partitions=partitions, duration=duration, seed=seed,
        web_port=settings.web_port, fit_after=fit_after or None)


def state_changelog_topic(app_id: str) -> str:
    from .topology import STATE_TABLE

    return f"{app_id}-{STATE_TABLE}-changelog"


def fit_and_publish(settings, time_unit: str, version, publish: bool, out=print, force: bool = False):
    """Fit the models from the customer states in the changelog; optionally publish the parameters.

    A fit that did not converge (typically: too little history to see anyone drop out) is not
    published unless forced: workers would score every customer with meaningless parameters.
    """
    import json

    from .core import codec
    from .core.prediction import fit_from_states
    from .kafka.produce import producer
    from .kafka.read import latest_values

    blobs = latest_values(settings.bootstrap, state_changelog_topic(settings.app_id))
    states = [codec.decode(v) for v in blobs.values() if v is not None]
    out(f"read {len(states)} customer states from {state_changelog_topic(settings.app_id)}")
    fitted = fit_from_states(states, time_unit, version)
    out(fitted.report())
    converged = fitted.bgnbd_fit.converged and fitted.gamma_gamma_fit.converged
    if publish and not converged and not force:
        out("not published: the fit did not converge (more history needed; --force publishes anyway)")
        return None
    if publish:
        prod = producer(settings.bootstrap)
        prod.send(settings.topic_model_parameters, key=b"current",
                  value=json.dumps(fitted.parameters.to_dict()).encode())
        prod.flush()
        prod.close()
        out(f"published {fitted.parameters.version} to {settings.topic_model_parameters}")
    return fitted


@app.command(
    option("--time-unit", type=click.Choice(["days", "weeks"]), default=None,
           help="Time unit of the parameters (default CLV_MODEL_TIME_UNIT)."),
    option("--version", "param_version", type=str, default=None,
           help="Parameter version label (default: calibration end date and customer count)."),
    option("--publish/--dry-run", default=True, help="Publish to the model-parameters topic (default) or only print."),
    option("--force", is_flag=True, default=False, help="Publish even if the fit did not converge."),
)
async def fit(self, time_unit, param_version, publish: bool, force: bool) -> None:
    """Fit BG/NBD + Gamma-Gamma on the engine's customer states and publish the parameters."""
    fit_and_publish(settings, time_unit or settings.model_time_unit, param_version, publish, force=force)


@app.command(
    option("--dry-run", is_flag=True, default=False, help="Only count what would be re-sent."),
    option("--include-late", is_flag=True, default=False,
           help="Also re-send events dead-lettered as late (they are then applied once)."),
)
async def redrive(self, dry_run: bool, include_late: bool) -> None:
    """Re-validate dead letters with the current settings; re-send those that now pass."""
    from .redrive import redrive as run_redrive

    report = run_redrive(settings, dry_run=dry_run, include_late=include_late)
    verb = "would re-send" if dry_run else "re-sent"
    print(f"{verb}: {sum(report['resent'].values())} {report['resent']}")
    print(f"still failing: {sum(report['still_failing'].values())} {report['still_failing']}")


@app.command(
    option("--policy", "policy_file", required=True, type=click.Path(exists=True, dir_okay=False),
           help="The new policy file (YAML) to compare with the current one."),
    option("--write", is_flag=True, default=False,
           help="Also write the new policy's segment changes to --output-topic (never the live topic)."),
    option("--output-topic", default=None,
           help="Topic for --write (default <app id>-whatif.segment-changes)."),
)
async def what_if(self, policy_file: str, write: bool, output_topic) -> None:
    """Replay the input topics through the current and a new policy; print the transition matrix."""
    from .core.policies import load_policy_file
    from .kafka.broker import kafka_python_config_for
    from .whatif import what_if as run_what_if

    new_policy = load_policy_file(policy_file)  # a bad file stops here with line and field
    report = run_what_if(settings, new_policy, output_topic=output_topic, write=write,
                         client_config=kafka_python_config_for(settings.broker_profile))
    print(report.render())
