"""Drive the emulator from tests: start it as a process, read its log, inject faults."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

from .fleet import fleet_seed, subscription_id

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def app_env(
    arm_endpoint: str, identity_endpoint: str, identity_header: str, ca_bundle: str
) -> dict[str, str]:
    """Environment variables that point the app (and azure-identity) at an emulator."""
    return {
        "SCALER_ARM_ENDPOINT": arm_endpoint,
        "IDENTITY_ENDPOINT": identity_endpoint,
        "IDENTITY_HEADER": identity_header,
        "REQUESTS_CA_BUNDLE": ca_bundle,
    }


class EmulatorControl:
    """Client of the `/_emulator/` control API (no auth; TLS verified against the emulator CA)."""

    def __init__(self, base_url: str, ca_bundle: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_bundle = ca_bundle
        self.session = requests.Session()
        # No environment: REQUESTS_CA_BUNDLE would override the session's CA, and a proxy
        # setting must never see loopback traffic.
        self.session.trust_env = False

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(
            method,
            f"{self.base_url}/_emulator/{path}",
            json=body,
            timeout=10,
            verify=self.ca_bundle,
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"{method} /_emulator/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    def requests_log(self) -> list[dict[str, Any]]:
        """Every ARM and token request: seq, time, method, path, if_match, status, fault, body,
        etag_after, kind ("PutAgentPool", ...) and throttled (the bucket that answered 429)."""
        log: list[dict[str, Any]] = self._call("GET", "requests")
        return log

    def stats(self) -> dict[str, Any]:
        """Counts of the request log: `total`, `throttled`, `status_429`, `throttled_by_bucket`
        and `by_kind` (`{"PutAgentPool": {"total", "throttled", "by_status": {"200": n}}}`)."""
        stats: dict[str, Any] = self._call("GET", "stats")
        return stats

    def count(
        self,
        kind: str | None = None,
        status: int | None = None,
        throttled: bool | None = None,
    ) -> int:
        """Logged requests of a kind ("PutAgentPool", "GetManagedCluster", ...), with a status,
        or answered 429 by a throttle bucket (`throttled=True`); None matches anything."""
        return sum(
            1
            for entry in self.requests_log()
            if (kind is None or entry.get("kind") == kind)
            and (status is None or entry["status"] == status)
            and (throttled is None or bool(entry.get("throttled")) == throttled)
        )

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def writes(self) -> list[dict[str, Any]]:
        """The PUTs to agent pools, oldest first."""
        return [
            entry
            for entry in self.requests_log()
            if entry["method"] == "PUT" and "/agentpools/" in entry["path"].lower()
        ]

    def pools(self) -> dict[str, dict[str, dict[str, Any]]]:
        """`{"rg/cluster": {"pool": properties}}`, operations settled as of now."""
        pools: dict[str, dict[str, dict[str, Any]]] = self._call("GET", "pools")
        return pools

    def pool(self, rg: str, cluster: str, name: str) -> dict[str, Any]:
        for key, pools in self.pools().items():
            if key.lower() == f"{rg}/{cluster}".lower():
                for pool_name, properties in pools.items():
                    if pool_name.lower() == name.lower():
                        return properties
        raise KeyError(f"no pool {rg}/{cluster}/{name} in the emulator")

    def clusters(self) -> list[dict[str, Any]]:
        """Every cluster, in seed order: `{"subscriptionId", "resourceGroup", "name", "tags"}`."""
        clusters: list[dict[str, Any]] = self._call("GET", "clusters")
        return clusters

    def set_cluster_tags(
        self, rg: str, cluster: str, tags: dict[str, str], subscription: str | None = None
    ) -> dict[str, str]:
        """Replace a cluster's Azure tags (GET/LIST managedClusters and Resource Graph see them
        at once; the cluster's eTag changes). Without `subscription`, the first cluster named
        `rg/cluster` in any subscription. Returns the tags now set."""
        path = "/".join(quote(part, safe="") for part in (subscription or "*", rg, cluster))
        result: dict[str, Any] = self._call("POST", f"clusters/{path}/tags", {"tags": tags})
        new_tags: dict[str, str] = result["tags"]
        return new_tags

    def reset(self, seed: dict[str, Any] | None = None) -> None:
        """Back to the start-up seed (or `seed`); clears faults, the log, config changes and
        throttle limit overrides, and refills every throttle bucket."""
        self._call("POST", "reset", {"seed": seed} if seed is not None else {})

    def seed_fleet(
        self,
        subscriptions: int = 2,
        resource_groups: int = 2,
        clusters_per_resource_group: int = 5,
        pools_per_cluster: int = 3,
        keep_seed: bool = False,
        tags: dict[str, str] | None = None,
        tag_every: int = 1,
        cluster_tags: dict[str, dict[str, str]] | None = None,
    ) -> list[str]:
        """Reset to a generated fleet (see `fleet.fleet_seed`, built by the emulator itself);
        returns the fleet's subscription ids. `keep_seed` keeps the start-up seed's clusters.
        Generated cluster n carries `tags` when n % tag_every == 0; `cluster_tags` (by cluster
        name) replaces the tags of the clusters it names."""
        fleet: dict[str, Any] = {
            "subscriptions": subscriptions,
            "resource_groups": resource_groups,
            "clusters_per_resource_group": clusters_per_resource_group,
            "pools_per_cluster": pools_per_cluster,
            "keep_seed": keep_seed,
            "tag_every": tag_every,
        }
        if tags is not None:
            fleet["tags"] = tags
        if cluster_tags is not None:
            fleet["cluster_tags"] = cluster_tags
        self._call("POST", "reset", {"fleet": fleet})
        return [subscription_id(i + 1) for i in range(subscriptions)]

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """CloudEvents published to the Event Grid route (`{arm_endpoint}/api/events`), oldest
        first: `{"seq", "time", "event"}` with `seq` greater than `after`."""
        events: list[dict[str, Any]] = self._call("GET", "events")
        return [entry for entry in events if entry["seq"] > after]

    def clear_events(self) -> None:
        self._call("DELETE", "events")

    def fail_eventgrid(self, status: int | None) -> None:
        """Answer every publish with `status` (e.g. 503) until None or a reset."""
        self._call("POST", "eventgrid", {"status": status})

    def set_faults(self, rules: list[dict[str, Any]], random: dict[str, Any] | None = None) -> None:
        self._call("POST", "faults", {"rules": rules, "random": random})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def faults(self) -> dict[str, Any]:
        """The current fault configuration, with the remaining `times` of each rule."""
        faults: dict[str, Any] = self._call("GET", "faults")
        return faults

    def set_operation_seconds(self, seconds: float) -> None:
        self._call("POST", "config", {"operation_seconds": seconds})

    def config(self) -> dict[str, Any]:
        """`{"operation_seconds", "throttling", "throttle_time_scale", "list_page_size"}`."""
        config: dict[str, Any] = self._call("GET", "config")
        return config

    def set_config(self, **settings: Any) -> dict[str, Any]:
        """Change any of `config()`'s settings until the next reset; returns them all."""
        config: dict[str, Any] = self._call("POST", "config", settings)
        return config

    def set_throttling(self, enabled: bool) -> None:
        """Throttling on (the default) or off: off never answers 429 from a bucket."""
        self.set_config(throttling=enabled)

    def set_throttle_time_scale(self, scale: float) -> None:
        """Buckets refill `scale` times faster than real time (60: 1 per minute -> 1 per s)."""
        self.set_config(throttle_time_scale=scale)

    def throttle(self) -> dict[str, Any]:
        """`{"enabled", "time_scale", "limits": {name: {"burst", "refill_per_second",
        "scope"}}, "buckets": [{"limit", "scope", "tokens", "burst"}]}` as of now."""
        throttle: dict[str, Any] = self._call("GET", "throttle")
        return throttle

    def set_limits(self, limits: dict[str, dict[str, float]]) -> dict[str, Any]:
        """Override limits until the next reset, e.g. `{"aks_put_agent_pool": {"burst": 2}}`;
        their buckets refill."""
        throttle: dict[str, Any] = self._call("POST", "throttle", {"limits": limits})
        return throttle

    def refill_buckets(self) -> None:
        """Every throttle bucket full again; settings and limits stay."""
        self._call("DELETE", "throttle")

    def force_pool(
        self,
        rg: str,
        cluster: str,
        pool: str,
        settle_after: float | None = None,
        **properties: Any,
    ) -> dict[str, Any]:
        """Overwrite pool properties with no AKS rule applied; returns the new properties.

        The eTag changes unless `eTag=` is given. A forced busy provisioningState (e.g.
        "Scaling") stays until forced back, or settles after `settle_after` seconds.
        `restoreCount=` sets the count a later start gives back.
        """
        body = dict(properties)
        if settle_after is not None:
            body["settleAfterSeconds"] = settle_after
        path = "/".join(quote(part, safe="") for part in (rg, cluster, pool))
        result: dict[str, Any] = self._call("POST", f"pools/{path}", body)
        return result

    def wait_until_settled(self, timeout: float = 10) -> dict[str, dict[str, dict[str, Any]]]:
        """Poll until no pool has an operation running; returns the settled pools."""
        deadline = time.monotonic() + timeout
        while True:
            pools = self.pools()
            busy = [
                f"{key}/{name}"
                for key, by_name in pools.items()
                for name, props in by_name.items()
                if props.get("provisioningState") != "Succeeded"
            ]
            if not busy:
                return pools
            if time.monotonic() >= deadline:
                raise TimeoutError(f"pools still busy after {timeout}s: {busy}")
            time.sleep(0.05)

    def close(self) -> None:
        self.session.close()


class EmulatorProcess:
    """`python -m local.aks_emulator` as a child process, for tests and local runs.

    with EmulatorProcess(operation_seconds=0.2) as emu:
        env = emu.env()        # what the app needs to talk to it
        emu.control.writes()   # what the app did
    """

    def __init__(
        self,
        operation_seconds: float = 1.0,
        seed: Path | None = None,
        ready_timeout: float = READY_TIMEOUT,
        throttling: bool = True,
        throttle_time_scale: float = 1.0,
        list_page_size: int | None = None,
    ) -> None:
        self.operation_seconds = operation_seconds
        self.seed = seed
        self.throttling = throttling
        self.throttle_time_scale = throttle_time_scale
        self.list_page_size = list_page_size
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[str] | None = None
        self.state_dir: Path | None = None
        self._stderr: IO[str] | None = None
        self.arm_endpoint = ""
        self.identity_endpoint = ""
        self.identity_header = ""
        self.ca_bundle = ""
        self._control: EmulatorControl | None = None
        self.returncode: int | None = None  # the exit status, once stopped

    def start(self) -> EmulatorProcess:
        self.state_dir = Path(tempfile.mkdtemp(prefix="aks-emulator-"))
        command = [
            sys.executable,
            "-m",
            "local.aks_emulator",
            "--port",
            "0",
            "--state-dir",
            str(self.state_dir),
            "--operation-seconds",
            str(self.operation_seconds),
            "--exit-on-stdin-eof",  # we hold its stdin: if this process dies, so does the emulator
        ]
        if self.seed is not None:
            command += ["--seed", str(Path(self.seed).resolve())]
        if not self.throttling:
            command.append("--no-throttling")
        if self.throttle_time_scale != 1:
            command += ["--throttle-time-scale", str(self.throttle_time_scale)]
        if self.list_page_size is not None:
            command += ["--list-page-size", str(self.list_page_size)]
        # stderr goes to a file: a pipe nobody reads would fill up and stall the emulator.
        self._stderr = open(self.state_dir / "stderr.log", "w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        try:
            info = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.arm_endpoint = info["arm_endpoint"]
        self.identity_endpoint = info["identity_endpoint"]
        self.identity_header = info["identity_header"]
        self.ca_bundle = info["ca_bundle"]
        return self

    def _wait_ready(self) -> dict[str, str]:
        assert self.process is not None and self.process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        # A thread, because readline() has no timeout and select() does not work on Windows.
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self.ready_timeout)
        except queue.Empty:
            raise RuntimeError(
                f"AKS emulator not ready after {self.ready_timeout}s; stderr:\n{self.stderr()}"
            ) from None
        if not line:
            self.process.wait(timeout=STOP_TIMEOUT)
            raise RuntimeError(
                f"AKS emulator exited with {self.process.returncode} before it was ready; "
                f"stderr:\n{self.stderr()}"
            )
        info: dict[str, str] = json.loads(line)
        return info

    def stderr(self) -> str:
        """What the emulator wrote to stderr so far (tracebacks, --verbose access log)."""
        if self.state_dir is None or not (self.state_dir / "stderr.log").exists():
            return ""
        return (self.state_dir / "stderr.log").read_text(encoding="utf-8", errors="replace")

    @property
    def eventgrid_endpoint(self) -> str:
        """The local Event Grid topic (SCALER_EVENTGRID_ENDPOINT)."""
        return f"{self.arm_endpoint}/api/events"

    @property
    def control(self) -> EmulatorControl:
        if self._control is None:
            if not self.arm_endpoint:
                raise RuntimeError("the emulator is not running")
            self._control = EmulatorControl(self.arm_endpoint, self.ca_bundle)
        return self._control

    def env(self) -> dict[str, str]:
        """Environment variables that point the app (and azure-identity) at this emulator."""
        return app_env(
            self.arm_endpoint, self.identity_endpoint, self.identity_header, self.ca_bundle
        )

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then kill. Safe to call twice."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.returncode = process.returncode
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["REPO_ROOT", "EmulatorControl", "EmulatorProcess", "fleet_seed", "subscription_id"]
