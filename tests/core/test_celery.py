"""Celery per region: routing by ``region=``, queues per region, enqueue only after commit."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from compliance.models import WorkerHeartbeat
from compliance.regions import UnknownRegionError
from compliance.tasking import enqueue_on_commit, route_task
from compliance.tasks import worker_heartbeat
from tests.conftest import queue_size, wait_for


def test_route_task_by_region_keyword():
    assert route_task("t", (), {"region": "eu"}, {}) == {"queue": "compliance.eu"}
    assert route_task("t", (), {"region": "us"}, {}) == {"queue": "compliance.us"}
    assert route_task("t", (), {}, {}) == {"queue": "compliance.control"}
    with pytest.raises(UnknownRegionError, match="apac"):
        route_task("t", (), {"region": "apac"}, {})


def test_unknown_queue_is_an_error_not_created():
    from celery.exceptions import QueueNotFound

    with pytest.raises((QueueNotFound, OperationalError, KeyError)):
        worker_heartbeat.apply_async(kwargs={"region": "eu"}, queue="compliance.nowhere")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_eu_worker_runs_eu_task_and_leaves_us_task(celery_worker_factory):
    celery_worker_factory(queues=["compliance.eu"])
    eu_nonce, us_nonce = uuid.uuid4().hex, uuid.uuid4().hex
    worker_heartbeat.apply_async(kwargs={"region": "us", "nonce": us_nonce})
    worker_heartbeat.apply_async(kwargs={"region": "eu", "nonce": eu_nonce})
    wait_for(
        lambda: WorkerHeartbeat.objects.using("eu").filter(nonce=eu_nonce).exists(),
        what="the eu worker to run the eu task",
    )
    assert not WorkerHeartbeat.objects.using("us").filter(nonce=us_nonce).exists()
    assert not WorkerHeartbeat.objects.using("eu").filter(nonce=us_nonce).exists()
    assert queue_size("compliance.us") == 1  # still waiting for a us worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_task_enqueued_in_rolled_back_transaction_is_never_sent(celery_worker_factory):
    celery_worker_factory(queues=["compliance.eu"])
    rolled_back, committed = uuid.uuid4().hex, uuid.uuid4().hex
    with pytest.raises(RuntimeError):
        with transaction.atomic(using="eu"):
            enqueue_on_commit(worker_heartbeat, region="eu", nonce=rolled_back)
            raise RuntimeError("roll back")
    assert queue_size("compliance.eu") == 0
    with transaction.atomic(using="eu"):
        enqueue_on_commit(worker_heartbeat, region="eu", nonce=committed)
    wait_for(
        lambda: WorkerHeartbeat.objects.using("eu").filter(nonce=committed).exists(),
        what="the committed task",
    )
    assert not WorkerHeartbeat.objects.using("eu").filter(nonce=rolled_back).exists()


def test_regional_task_refuses_other_regions_worker(monkeypatch):
    from compliance.tasking import WrongRegionWorkerError

    monkeypatch.setenv("COMPLIANCE_WORKER_REGIONS", "us")
    with pytest.raises(WrongRegionWorkerError):
        worker_heartbeat(region="eu", nonce="x")
