"""Several Functions host instances (each with host.json's batch of parallel deliveries) on
the same pools: no lost update, no double write, one final outcome per intent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.resilience.harness import (
    RunReport,
    app_settings,
    assert_no_lost_update,
    load_stack,
    pool_matches,
    run,
    workload,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunReport]:
    with (
        load_stack(tmp_path_factory.mktemp("concurrency"), operation_seconds=0.2) as stack,
        app_settings(stack),
    ):
        yield run(stack, workload(120, seed=11, invalid_rate=0.0), workers=3)


def test_one_final_outcome_per_intent(report: RunReport) -> None:
    finals = report.final_by_intent()
    assert set(finals) == report.workload.intent_ids
    assert {len(docs) for docs in finals.values()} == {1}


def test_the_newest_intent_wins_every_pool(report: RunReport) -> None:
    for (cluster, pool), want in report.workload.newest.items():
        assert pool_matches(report.pools[f"rg-demo/{cluster}"][pool], want), (cluster, pool)


def test_no_lost_update(report: RunReport) -> None:
    assert_no_lost_update(report)


def test_no_double_write_every_write_is_accounted_for(report: RunReport) -> None:
    """Each accepted write belongs to exactly one pool outcome that says it wrote."""
    distinct = {o["outcome_id"]: o for o in report.outcomes}
    reported = sum(1 for o in distinct.values() for p in o["pools"] if p["after"] is not None)
    accepted = sum(1 for r in report.requests if r["method"] == "PUT" and r["status"] == 200)
    assert accepted == reported


def test_nothing_is_left_in_flight(report: RunReport) -> None:
    assert report.left_in_intents == 0 and report.left_in_poison == 0
