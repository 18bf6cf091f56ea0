"""The worker's web endpoints (Faust views, read-only).

    GET /metrics                    Prometheus exposition (no token: aggregates only, no customer data)
    GET /health                     liveness: the process and its event loop answer (no token: for probes)
    GET /ready                      readiness: 200 when changelog recovery is finished and no rebalance
                                    is under way, else 503 (no token: for probes)
    GET /customers/{customer_id}    one customer: state, CLV forms, segment, reason, service level;
                                    answered by the worker that owns the key (``table_route``)
    GET /segments                   the population summary per segment (counts, shares, churn, NPS, CES, Pareto)

With ``CLV_API_TOKEN`` set, /customers and /segments need ``Authorization: Bearer <token>``.
Errors are JSON ``{"error": ...}``: 400 malformed id, 401 missing or wrong token, 404 unknown
customer, 503 not ready or no summary yet; and (``web_errors``) 404 no such path, 405 method not
allowed, 414 URL too long, 431 header too large, 400 malformed request, 500 internal error.
"""
from __future__ import annotations

import hmac
from typing import Callable, Optional

import faust
from faust.web import Request, Response, View

from .core import codec
from .core.population import PopulationSummary
from .lookup import customer_document, summary_document, valid_customer_id
from .metrics import exposition, worker_status
from .web_errors import install as json_errors_everywhere

SummarySource = Callable[[], Optional[PopulationSummary]]


class Population:
    """Where /segments reads the population summary; the topology sets ``source``."""

    def __init__(self, source: Optional[SummarySource] = None):
        self.source = source

    def summary(self) -> Optional[PopulationSummary]:
        return self.source() if self.source is not None else None


def register_views(app: faust.App, table, pipeline, api_token: str = "",
                   population: Optional[Population] = None) -> Population:
    population = population or Population()
    json_errors_everywhere(app.web.web_app)

    def denied(view: View, request: Request) -> Optional[Response]:
        if not api_token:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_token.encode()):
            return None
        return view.error(401, "missing or invalid bearer token" if header else "bearer token required",
                          headers={"WWW-Authenticate": 'Bearer realm="clvstream"'})

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(exposition(), content_type="text/plain; version=0.0.4")  # aiohttp adds the charset

    @app.page("/health")
    async def health(web, request):
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web, request):
        status = worker_status(app)
        changelog = table.changelog_topic.get_topic_name()
        owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog)
        return web.json({"status": "ready" if status["ready"] else "not ready", **status, "partitions": owned},
                        status=200 if status["ready"] else 503)

    @app.page("/customers/{customer_id}")
    class CustomerLookup(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            refused = denied(self, request)
            if refused is not None:
                return refused
            if not valid_customer_id(customer_id):
                return self.error(400, "malformed customer id: 1-128 characters of letters, digits and . _ : @ -")
            return await self.owned(request, customer_id=customer_id)

        @app.table_route(table=table, match_info="customer_id")
        async def owned(self, request: Request, customer_id: str) -> Response:
            # On the worker that owns the key's partition (table_route forwards it otherwise).
            status = worker_status(app)
            if not status["ready"]:
                return self.error(503, "not ready: table recovery or rebalance under way", **status)
            blob = table.get(customer_id.encode())
            if blob is None:
                return self.error(404, "unknown customer", customer_id=customer_id)
            doc = customer_document(codec.decode(blob), pipeline.cfg, pipeline.scorer)
            return self.json(doc)

    @app.page("/segments")
    class Segments(View):
        async def get(self, request: Request) -> Response:
            refused = denied(self, request)
            if refused is not None:
                return refused
            summary = population.summary()
            if summary is None:
                return self.error(503, "population summary not available yet")
            return self.json(summary_document(summary))

    return population
