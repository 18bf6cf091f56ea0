"""Custom CLI commands (registered on the Faust app)."""
from __future__ import annotations

import os

import click
from faust.cli import option

from .ops.fit import fit_and_publish
from .settings import settings_table, settings_values
from .topics import state_changelog_topic  # noqa: F401  (importable from here, as before)
from .worker import app, settings


@app.command(
    option("--defaults", is_flag=True, default=False, help="Print the table of variables and defaults instead."),
)
async def show_settings(self, defaults: bool) -> None:
    """Print the current value of every setting (secrets masked), or the table of defaults."""
    print(settings_table() if defaults else settings_values(settings))


def _fail(message: str, code: int = 1) -> None:
    print(message)
    raise SystemExit(code)


@app.command(
    click.argument("action", type=click.Choice(["provision", "check"])),
    option("--dry-run", is_flag=True, default=False, help="provision: only print what would change."),
)
async def topics(self, action: str, dry_run: bool) -> None:
    """Create the engine's topics with partition counts and configs, or check a cluster against them."""
    from .ops import topics as ops_topics

    if action == "check":
        report = ops_topics.check(settings)
        print("\n".join(report.lines()))
        if not report.ok:
            _fail("topics differ from their specs (clvstream topics provision fixes missing topics and configs)")
        return
    todo = ops_topics.provision(settings, dry_run=dry_run)
    print("\n".join(todo.lines(dry_run)))
    if todo.unfixable:
        _fail("partition counts differ: not fixable by provisioning")


@app.command(
    option("--from-timestamp", "from_timestamp", type=str, default=None,
           help="ISO 8601 time: first event at or after it (per partition); no zone means UTC."),
    option("--to-earliest", is_flag=True, default=False, help="The start of every input partition."),
    option("--offset", type=int, default=None, help="This offset on every input partition (clamped to the log)."),
    option("--dry-run", is_flag=True, default=False, help="Only print the moves."),
    option("--wait", type=float, default=10.0, help="Seconds to wait for stopping workers to leave the group."),
    option("--force", is_flag=True, default=False,
           help="Skip the stopped-group check (every worker is known to be stopped; the broker lists a killed one)."),
)
async def replay(self, from_timestamp, to_earliest: bool, offset, dry_run: bool, wait: float, force: bool) -> None:
    """Move the worker group's input offsets (every worker stopped). Live state skips what it applied."""
    from .ops.offsets import GroupActive, parse_timestamp, replay as run_replay

    how = dict(timestamp_ms=parse_timestamp(from_timestamp) if from_timestamp else None,
               to_earliest=to_earliest, offset=offset)
    try:
        reset = run_replay(settings, dry_run=dry_run, wait=wait, force=force, **how)
    except (GroupActive, ValueError) as exc:
        _fail(f"refused: {exc}")
    print("\n".join(reset.lines(dry_run)))


@app.command(
    option("--dry-run", is_flag=True, default=False, help="Only print what would be wiped and reset."),
    option("--wait", type=float, default=10.0, help="Seconds to wait for stopping workers to leave the group."),
    option("--force", is_flag=True, default=False,
           help="Skip the stopped-group check (every worker is known to be stopped; the broker lists a killed one)."),
    option("--bulk/--by-workers", default=True,
           help="Rebuild the state here in batches (default), or leave the replay to the workers."),
    option("--progress/--no-progress", default=True, help="Progress bar with rate and ETA (bulk)."),
)
async def rebuild(self, dry_run: bool, wait: float, force: bool, bulk: bool, progress: bool) -> None:
    """Start over from the input log: wipe local state and changelogs, reset the group, rebuild the state."""
    from .ops.offsets import GroupActive, rebuild as run_rebuild

    try:
        result = run_rebuild(settings, dry_run=dry_run, wait=wait, force=force)
    except GroupActive as exc:
        _fail(f"refused: {exc}")
    print("\n".join(result.lines(dry_run)))
    if bulk and not dry_run:
        from .bulk.run import run_bulk_and_commit

        report = await run_bulk_and_commit(settings, progress=progress)
        print("\n".join(report.lines()))
        print("start the workers: they restore the rebuilt state from the changelog and go on from there")
    elif not dry_run:
        print("start the workers (CLV_REPLAY=true marks the replayed segment changes); "
              "`clvstream lag --follow` shows the catch-up")


@app.command(
    option("--processes", type=int, default=os.cpu_count() or 1, show_default=True,
           help="Worker processes on this machine (one per core), sharing the partitions."),
    option("--loglevel", "log_level", default="warn", help="Log level of each worker."),
    option("--log-dir", type=click.Path(file_okay=False), default=None,
           help="Write worker-p<i>.log files here (default: this terminal)."),
)
async def workers(self, processes: int, log_level: str, log_dir) -> None:
    """Run N live workers on this machine, each with its own data dir (<dir>/p<i>) and web port (+i)."""
    from .processes import run as run_processes

    # In the foreground, like the demo: Ctrl-C and SIGTERM reach this process, which stops them all.
    raise SystemExit(run_processes(settings, processes, log_level, log_dir))


@app.command(
    option("--partition", "partitions", type=int, multiple=True,
           help="Only this partition (repeatable; default: every partition)."),
    option("--progress/--no-progress", default=True, help="Progress bar with rate and ETA."),
)
async def restore(self, partitions, progress: bool) -> None:
    """Fill this machine's local state store from the changelog in bulk, before starting a worker on it."""
    from .bulk.restore import restore as run_restore

    report = await run_restore(settings, partitions or None, progress=progress)
    print(report.line())


@app.command(
    option("--follow", is_flag=True, default=False, help="Progress bar (rate, ETA) until the group caught up."),
    option("--timeout", type=float, default=None, help="Stop following after this many seconds."),
)
async def lag(self, follow: bool, timeout) -> None:
    """Events the worker group has still to read on its inputs."""
    from .ops.progress import follow as run_follow, lag as read_lag, remaining

    if follow:
        left = run_follow(settings, timeout=timeout)
    else:
        positions = read_lag(settings)
        for tp, (done, end) in sorted(positions.items()):
            print(f"{tp.topic}[{tp.partition}] committed {'-' if done is None else done} end {end}")
        left = remaining(positions)
    print(f"lag: {left} events")


def _run_without_faust_worker(self, *args, **kwargs):
    """Run a command that owns the process and its signals directly, not inside Faust's mode Worker:
    the Worker also reacts to the Ctrl-C the command already handled and its shutdown added seconds
    after the command's last line."""
    import asyncio
    import os
    import sys

    asyncio.run(self.execute(*(self.args + args), **{**self.kwargs, **kwargs}))
    # Everything the command started is stopped and its summary printed: skip the interpreter's teardown
    # of Faust, scipy and kafka-python, which took seconds on a loaded machine after the user's Ctrl-C.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command(
    option("--customers", type=int, default=2000,
           help="Customers signing up in the first 30 simulated days (more arrive and are referred later)."),
    option("--rate", type=float, default=500.0, help="Events per second."),
    option("--partitions", type=int, default=4, help="Partitions of the demo topics."),
    option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C)."),
    option("--seed", type=int, default=7, help="Generator seed (same seed, same customers)."),
    option("--fit-after", type=float, default=30.0,
           help="Fit and publish BG/NBD + Gamma-Gamma parameters after this many seconds (0: never)."),
    run_using_worker=_run_without_faust_worker,
)
async def demo(self, customers: int, rate: float, partitions: int, duration, seed: int, fit_after: float) -> None:
    """Run the engine end to end on an embedded broker with generated traffic."""
    from .demo import run

    # The demo owns this process and its Ctrl-C (see _run_without_faust_worker).
    run(customers=customers, rate=rate, partitions=partitions, duration=duration, seed=seed,
        web_port=settings.web_port, fit_after=fit_after or None)


@app.command(
    option("--time-unit", type=click.Choice(["days", "weeks"]), default=None,
           help="Time unit of the parameters (default CLV_MODEL_TIME_UNIT)."),
    option("--version", "param_version", type=str, default=None,
           help="Parameter version label (default: calibration end date and customer count)."),
    option("--publish/--dry-run", default=True, help="Publish to the model-parameters topic (default) or only print."),
    option("--force", is_flag=True, default=False,
           help="Publish a fit that falls short of the data requirements (never one a model refused)."),
    option("--min-customers", type=int, default=None, help="Least customers with orders (default 500)."),
    option("--min-days", type=float, default=None, help="Least days of history (default 180)."),
    option("--min-repeat-buyers", type=int, default=None, help="Least repeat buyers (default 100)."),
    option("--penalizer", type=float, default=0.0,
           help="L2 penalty on the (rescaled) parameters, like lifetimes' penalizer_coef (default 0)."),
    option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
           help="Also write the diagnostics as PNG pictures and an index.html into this directory."),
)
async def fit(self, time_unit, param_version, publish: bool, force: bool, min_customers, min_days,
              min_repeat_buyers, penalizer: float, report_dir) -> None:
    """Fit BG/NBD + Gamma-Gamma on the engine's customer states; publish the parameters if fit to use."""
    from dataclasses import replace as _replace

    from .models.requirements import DataRequirements

    requirements = DataRequirements()
    for name, value in (("min_customers", min_customers), ("min_history_days", min_days),
                        ("min_repeat_buyers", min_repeat_buyers)):
        if value is not None:
            requirements = _replace(requirements, **{name: value})
    fit_and_publish(settings, time_unit or settings.model_time_unit, param_version, publish, force=force,
                    requirements=requirements, penalizer_coef=penalizer, report_dir=report_dir)


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
    from .ops.clients import client_config
    from .whatif import what_if as run_what_if

    new_policy = load_policy_file(policy_file)  # a bad file stops here with line and field
    report = run_what_if(settings, new_policy, output_topic=output_topic, write=write,
                         client_config=client_config(settings))
    print(report.render())
