"""The local stack: Azurite + the AKS emulator, and the settings that point the app at them.

Used by the run command and by the integration tests, so both exercise the same wiring.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from local.aks_emulator.control import EmulatorProcess
from local.azurite import AzuriteProcess
from scaler.settings import (
    INTENTS_QUEUE,
    POISON_QUEUE,
    RECONCILE_QUEUE,
    RESULTS_QUEUE,
    STATE_TABLE,
)

LOCAL_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
# The client id of the app's user-assigned identity, as the emulator's token endpoint sees it.
LOCAL_CLIENT_ID = "11111111-1111-1111-1111-111111111111"


@dataclass
class LocalStack:
    azurite: AzuriteProcess
    emulator: EmulatorProcess
    settings: dict[str, str] = field(default_factory=dict)

    def queue_service(self) -> QueueServiceClient:
        return QueueServiceClient.from_connection_string(self.azurite.connection_string)

    @contextlib.contextmanager
    def app_environment(self, **overrides: str) -> Iterator[None]:
        """This stack's settings (plus `overrides`) in os.environ, where the app's bootstrap
        reads them, for running the function app in this process; restored afterwards."""
        from scaler import bootstrap

        saved = dict(os.environ)
        os.environ.update({**self.settings, **overrides})
        bootstrap.reset()
        try:
            yield
        finally:
            bootstrap.reset()
            os.environ.clear()
            os.environ.update(saved)

    def table_service(self) -> TableServiceClient:
        return TableServiceClient.from_connection_string(self.azurite.connection_string)

    def create_storage(self) -> None:
        """What infra/ creates in Azure: the queues and the state table."""
        with self.queue_service() as service:
            for name in (INTENTS_QUEUE, POISON_QUEUE, RESULTS_QUEUE, RECONCILE_QUEUE):
                with contextlib.suppress(ResourceExistsError):  # already there after a restart
                    service.create_queue(name)
        with self.table_service() as tables:
            tables.create_table_if_not_exists(STATE_TABLE)


def app_settings(
    azurite: AzuriteProcess,
    emulator: EmulatorProcess,
    operation_seconds: float = 1.0,
    events: bool = False,
) -> dict[str, str]:
    """What `local.settings.json` would hold: the app's settings for this stack. `events`:
    publish CloudEvents to the emulator's Event Grid route (off for tests that count requests)."""
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "AZURE_SUBSCRIPTION_ID": LOCAL_SUBSCRIPTION,
        "AZURE_CLIENT_ID": LOCAL_CLIENT_ID,
        "SCALER_RESOURCE_GROUP": "rg-demo",
        "SCALER_CLUSTER": "aks-demo",
        "SCALER_ALLOWED_CLUSTERS": "rg-demo/*",
        # Short retry delays locally, so a deferred intent visibly comes back within seconds.
        "SCALER_RETRY_BASE_SECONDS": "2",
        "SCALER_RETRY_MAX_SECONDS": "30",
        # The emulator's pool operations take this long: a busy pool is looked at again then.
        "SCALER_OPERATION_SECONDS": str(operation_seconds),
        # A burst of intents within a second costs one reconcile.
        "SCALER_COALESCE_SECONDS": "1",
        # func start fires the schedule timer every 30 s locally (every 5 minutes in Azure).
        "SCALER_TIMER_SCHEDULE": "*/30 * * * * *",
        **emulator.env(),
        **({"SCALER_EVENTGRID_ENDPOINT": emulator.eventgrid_endpoint} if events else {}),
    }


@contextlib.contextmanager
def local_stack(
    operation_seconds: float = 1.0,
    azurite_ports: dict[str, int] | None = None,
    log_dir: Path | None = None,
    data_dir: Path | None = None,
    events: bool = False,
) -> Iterator[LocalStack]:
    azurite = AzuriteProcess(log_dir=log_dir, data_dir=data_dir)
    if azurite_ports:
        azurite.ports = dict(azurite_ports)
    with azurite, EmulatorProcess(operation_seconds=operation_seconds) as emulator:
        settings = app_settings(azurite, emulator, operation_seconds, events)
        stack = LocalStack(azurite, emulator, settings)
        stack.create_storage()
        yield stack
