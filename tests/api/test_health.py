"""/healthz, /readyz and /metrics without a backend, and readiness when the DB is gone."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import build_api, wait_until
from tests.factories import error_of, make_network

ADMIN = {"X-Roles": "admin"}


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Parsed with Prometheus' own parser: {(name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_liveness_and_readiness_without_a_backend(api):
    assert api.get("/healthz").json() == {"status": "alive"}
    resp = api.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "database": "ok"}


def test_readiness_is_503_when_the_database_does_not_answer(tmp_path):
    # A PostgreSQL URL on a port nothing listens on.
    api = build_api("postgresql+asyncpg://postgres@127.0.0.1:9/none",
                    database_statement_timeout_ms=1000)
    with api.client:
        resp = api.get("/readyz")
        assert resp.status_code == 503
        assert resp.json() == {"status": "unavailable", "database": "unreachable"}
        assert "127.0.0.1" not in resp.text
        assert api.get("/healthz").status_code == 200  # alive all the same


def test_metrics_in_prometheus_text_format(api):
    make_network(api, name="counted")
    resp = api.get("/metrics", headers=ADMIN)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(resp.text)
    assert ("segmentd_events_unfanned", ()) in samples
    assert not [k for k in samples if k[0].startswith("segmentd_backend_")]  # no backend

    def unfanned():
        resp = api.get("/metrics", headers=ADMIN)
        assert resp.status_code == 200, resp.text
        return metric_samples(resp.text)[("segmentd_events_unfanned", ())]

    # The dispatcher fans the network's events out in the background: the gauge drops to 0.
    wait_until(lambda: unfanned() == 0, "segmentd_events_unfanned at 0")


def test_metrics_need_admin_or_service(api):
    resp = api.get("/metrics", headers={"X-Roles": "member", "X-Project-Id": "p1"})
    assert resp.status_code == 403
    assert error_of(resp) == {"type": "PolicyNotAuthorized", "detail": "",
                              "message": "rule:get_metrics is disallowed by policy"}
    assert api.get("/metrics", headers={"X-Roles": "service"}).status_code == 200
