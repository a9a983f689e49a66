"""Where the schedule document comes from: a file shipped beside function_app.py, or a blob in
the app's storage account (read on every run, so operators change it without a redeploy)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from scaler.adapters.storage import storage_client
from scaler.domain.errors import InvalidInput
from scaler.settings import Settings

APP_ROOT = Path(__file__).resolve().parents[2]  # the folder holding function_app.py


class FileSchedule:
    def __init__(self, path: Path) -> None:
        self._path = path if path.is_absolute() else APP_ROOT / path

    def read(self) -> tuple[str, str]:
        try:
            return self._path.read_text(encoding="utf-8"), self._path.name
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(str(self._path), f"cannot read the schedule: {error}") from None


class BlobSchedule:
    def __init__(self, env: Mapping[str, str], credential: TokenCredential, name: str) -> None:
        from azure.storage.blob import BlobServiceClient

        container, _, blob = name.partition("/")
        service = storage_client(BlobServiceClient, "blob", env, credential)
        self._service = service
        self._blob = service.get_blob_client(container, blob)
        self._name = name

    def read(self) -> tuple[str, str]:
        try:
            data = self._blob.download_blob().readall()
        except AzureError as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InvalidInput(self._name, f"cannot read the schedule blob: {message}") from None
        try:
            return data.decode("utf-8"), self._name
        except UnicodeDecodeError:
            raise InvalidInput(self._name, "the schedule blob is not UTF-8 text") from None

    def close(self) -> None:
        self._service.close()


def schedule_source(
    settings: Settings, env: Mapping[str, str], credential: TokenCredential
) -> FileSchedule | BlobSchedule:
    if settings.schedule_blob:
        return BlobSchedule(env, credential, settings.schedule_blob)
    return FileSchedule(Path(settings.schedule_file))
