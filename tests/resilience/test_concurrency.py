"""Several Functions host instances (each running both queue triggers with host.json's batch of
parallel deliveries) on the same pools, throttled like AKS: no lost update, every write
accounted for, one final outcome per intent, every pool as resolution says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.resilience.harness import (
    RunReport,
    account_for_writes,
    app_settings,
    assert_final_states,
    assert_no_lost_update,
    assert_writes_accounted_for,
    expected_states,
    load_stack,
    run,
    throttle_like_aks,
    workload,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunReport]:
    with (
        load_stack(tmp_path_factory.mktemp("concurrency"), operation_seconds=0.2) as stack,
        app_settings(stack),
    ):
        throttle_like_aks(stack, time_scale=6)
        result = run(stack, workload(120, seed=11, invalid_rate=0.0), workers=3, rate=10)
        print(f"\n{result.summary()}")
        yield result


def test_one_final_outcome_per_intent(report: RunReport) -> None:
    finals = report.final_by_intent()
    assert set(finals) == report.workload.intent_ids
    assert {len(docs) for docs in finals.values()} == {1}
    assert report.counts["poisoned"] == report.counts["rejected"] == 0


def test_every_pool_ends_in_the_state_resolution_gives_its_sources(report: RunReport) -> None:
    assert_final_states(report, expected_states(report.workload))


def test_no_lost_update(report: RunReport) -> None:
    assert_no_lost_update(report)


def test_every_accepted_write_is_accounted_for(report: RunReport) -> None:
    assert_writes_accounted_for(account_for_writes(report))


def test_nothing_is_left_in_flight(report: RunReport) -> None:
    assert report.left_in_intents == 0
    assert report.left_in_poison == {"scale-intents-poison": 0, "scale-reconcile-poison": 0}
