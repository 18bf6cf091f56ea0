"""`clvstream fit`: fit the models from the customer states in the changelog, optionally publish.

Here rather than in ``commands.py`` because the demo fits in the background too, and the
demo must not import the CLI (which imports the Faust app).
"""
from __future__ import annotations

from ..topics import state_changelog_topic


def fit_and_publish(settings, time_unit: str, version, publish: bool, out=print, force: bool = False,
                    requirements=None, penalizer_coef: float = 0.0, report_dir=None):
    """Fit the models from the customer states in the changelog; publish the parameters if fit to use.

    Prints the diagnostics (log-likelihoods, parameters with standard errors, customer and
    repeat-buyer counts, the holdout check, the verdict).  A fit that is refused (too little data
    for ``requirements``, or a model refusing its own estimates: a parameter at a bound,
    near-degenerate, not identified) is never published: workers would score every customer with
    meaningless parameters.  ``force`` publishes a fit whose only shortfall is the data
    requirements; a refused model fit is not published even then.  Returns the fit when it was
    published (or, on a dry run, when it would be), else None.
    """
    import json

    from ..core import codec
    from ..core.fit import fit_from_states
    from ..kafka.produce import producer
    from ..kafka.read import latest_values
    from ..models.requirements import DataRequirements
    from .clients import client_config

    requirements = requirements or DataRequirements()
    config = client_config(settings)  # broker work-arounds and SASL/SSL, like every ops client
    blobs = latest_values(settings.bootstrap, state_changelog_topic(settings.app_id), **config)
    states = [codec.decode(v) for v in blobs.values() if v is not None]
    out(f"read {len(states)} customer states from {state_changelog_topic(settings.app_id)}")
    fitted = fit_from_states(states, time_unit, version, requirements=requirements,
                             penalizer_coef=penalizer_coef)
    for line in fitted.report().splitlines():
        out(line)
    if report_dir is not None:
        from ..models.report import write_report

        cal = fitted.calibration
        index = write_report(report_dir, bgnbd_fit=fitted.bgnbd_fit, x=cal.get("x", []), t_x=cal.get("t_x", []),
                             T=cal.get("T", []), time_unit=time_unit, holdout=fitted.holdout,
                             tracking=fitted.tracking, summary=fitted.report(), holdout_note=fitted.holdout_note)
        out(f"report: {index}")
    if not fitted.may_publish(force):
        if publish:
            # (no "published" in these lines: the demo and its test look for that word)
            out(f"refused: nothing sent to {settings.topic_model_parameters}"
                + (" (--force sends a fit that is short of data only)" if fitted.may_publish(True) else ""))
        return None
    if publish:
        prod = producer(settings.bootstrap, **config)
        prod.send(settings.topic_model_parameters, key=b"current",
                  value=json.dumps(fitted.parameters.to_dict()).encode())
        prod.flush()
        prod.close()
        out(f"published {fitted.parameters.version} to {settings.topic_model_parameters}")
    return fitted
