"""Liveness, readiness and metrics.

/healthz answers while the process serves requests. /readyz says whether it can do its
work: the database answers (else 503), and, with a backend, whether it is connected and
how many changes wait for it (still 200: writes are accepted and wait in the outbox), and,
in Keystone mode, whether Keystone answers (still 200: every instance shares Keystone, and
cached and segmentd's own tokens keep working; taking every instance out of a load
balancer would refuse those too).
Neither needs a token, and neither names an address or an error. /metrics is for
Prometheus and takes a token (policy get_metrics).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from segmentd.api.deps import ContextDep, json_response
from segmentd.api.runtime import runtime
from segmentd.auth.keystone import KeystoneTokenValidator
from segmentd.auth.policy import enforce
from segmentd.services import health

LOG = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
KEYSTONE_CHECK_SECONDS = 2.0  # /readyz waits no longer for Keystone's answer
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz")
async def healthz():
    return json_response({"status": "alive"})


@router.get("/readyz")
async def readyz(request: Request):
    rt = runtime(request)
    try:
        async with rt.read() as conn:
            state = await health.readiness(conn, rt.realization)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        LOG.warning("readiness: the database does not answer: %s", exc)
        return json_response({"status": "unavailable", "database": "unreachable"}, 503)
    if isinstance(rt.validator, KeystoneTokenValidator):
        try:  # asked at most every few seconds, one question at a time
            reachable = await asyncio.wait_for(rt.validator.check(), KEYSTONE_CHECK_SECONDS)
        except TimeoutError:  # it goes on in the background; now it is not answering
            reachable = False
        state["keystone"] = "reachable" if reachable else "unreachable"
        if not reachable:
            state["status"] = "degraded"
    return json_response(state)


class _Gauges:
    """A one-scrape collector: the gauges read for this request, and this process' count
    of refusals logged instead of stored (over their caller's audit budget)."""

    def __init__(self, gauges: list[health.Gauge], unrecorded: int) -> None:
        self._gauges = gauges
        self._unrecorded = unrecorded

    def collect(self):
        for g in self._gauges:
            family = GaugeMetricFamily(g.name, g.help, labels=list(g.labels))
            for labels, value in g.samples:
                family.add_metric(list(labels), value)
            yield family
        yield CounterMetricFamily(
            "segmentd_audit_refusals_unrecorded",
            "Refused requests logged instead of stored: over their caller's audit budget "
            "(this process, since it started)", value=self._unrecorded)


@router.get("/metrics")
async def metrics(request: Request, ctx: ContextDep):
    enforce(ctx, "get_metrics")
    rt = runtime(request)
    async with rt.read() as conn:
        gauges = await health.gauges(conn, rt.realization)
    if isinstance(rt.validator, KeystoneTokenValidator):
        valid, invalid = rt.validator.cached()
        gauges += [
            health.Gauge("segmentd_keystone_reachable",
                         "1 unless this process' last attempt to reach Keystone failed", (),
                         [((), 1 if rt.validator.available else 0)]),
            health.Gauge("segmentd_keystone_cached_tokens",
                         "Keystone tokens this process remembers, by Keystone's answer",
                         ("answer",), [(("valid",), valid), (("invalid",), invalid)]),
        ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Gauges(gauges, rt.limits.unrecorded_refusals))
    return Response(generate_latest(registry), media_type=PROMETHEUS_TEXT)
