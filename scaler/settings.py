"""Every setting the app reads, with its default, in one place.

`SETTINGS` is the catalogue: the README's settings table and the infrastructure test
(every setting the code reads must be set by infra/) are both checked against it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import isodate

from scaler.domain.clusters import ClusterRef, allowed_subscriptions, is_allowed
from scaler.domain.intents import IntentDefaults
from scaler.domain.pools import AKS_MAX_NODES_PER_POOL
from scaler.domain.tags import TagRules

# Queue names are part of the contract with producers and with infra/, so they are fixed.
INTENTS_QUEUE = "scale-intents"
POISON_QUEUE = f"{INTENTS_QUEUE}-poison"  # the name the Functions host uses for poison messages
RESULTS_QUEUE = "scale-results"
# One message per cluster to reconcile (after intents, for wake-ups and retries).
RECONCILE_QUEUE = "scale-reconcile"
# The desired-state store: sources per cluster, pool memos, intent ids.
STATE_TABLE = "scalerstate"

PUBLIC_CLOUD_ARM = "https://management.azure.com"

# The storage setting prefix the Functions host uses (connection string or identity-based
# `AzureWebJobsStorage__*` settings); the app's own queue clients read the same settings.
STORAGE_CONNECTION = "AzureWebJobsStorage"


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str
    help: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("AZURE_SUBSCRIPTION_ID", "", "Subscription of the default cluster."),
    SettingSpec(
        "AZURE_CLIENT_ID",
        "",
        "Client id of the user-assigned managed identity the app authenticates as.",
    ),
    SettingSpec("SCALER_RESOURCE_GROUP", "", "Resource group of the default cluster."),
    SettingSpec("SCALER_CLUSTER", "", "Name of the default AKS cluster."),
    SettingSpec(
        "SCALER_ALLOWED_CLUSTERS",
        "",
        "Comma-separated clusters intents may target: `resourceGroup/cluster` (in "
        "AZURE_SUBSCRIPTION_ID) or `subscriptionId/resourceGroup/cluster`; `*` matches a whole "
        "segment. Empty: only the default cluster.",
    ),
    SettingSpec("SCALER_MAX_COUNT", "100", "Largest node count or maxCount an intent may ask for."),
    SettingSpec(
        "SCALER_ARM_ENDPOINT",
        PUBLIC_CLOUD_ARM,
        "Azure Resource Manager endpoint (another cloud, or the local emulator). HTTPS only.",
    ),
    SettingSpec(
        "SCALER_ARM_SCOPE",
        f"{PUBLIC_CLOUD_ARM}/.default",
        "Token scope for Resource Manager (differs in sovereign clouds).",
    ),
    SettingSpec(
        "SCALER_MAX_ATTEMPTS",
        "8",
        "Attempts for an intent that meets transient failures before it is parked in "
        f"`{POISON_QUEUE}`.",
    ),
    SettingSpec(
        "SCALER_RETRY_BASE_SECONDS",
        "15",
        "First retry delay; it doubles per attempt and never undercuts ARM's Retry-After.",
    ),
    SettingSpec("SCALER_RETRY_MAX_SECONDS", "900", "Longest delay between two attempts."),
    SettingSpec(
        "SCALER_MAX_LEASE", "P1D", "Longest `lease` an intent may ask for (ISO-8601 duration)."
    ),
    SettingSpec(
        "SCALER_MAX_CLOCK_SKEW",
        "PT5M",
        "How far in the future an intent's `issued_at` may be before it is rejected.",
    ),
    SettingSpec(
        "SCALER_COALESCE_SECONDS",
        "2",
        "Quiet period before a cluster is reconciled after an intent: a burst that arrives "
        "within it costs one read and one write. 0 reconciles at once.",
    ),
    SettingSpec(
        "SCALER_COALESCE_MAX_SECONDS",
        "30",
        "Longest an intent waits for a burst to end before its cluster is reconciled anyway.",
    ),
    SettingSpec(
        "SCALER_OPERATION_SECONDS",
        "120",
        "How long an AKS pool operation is expected to take: a busy pool is looked at again "
        "that long after the write that started it.",
    ),
    SettingSpec(
        "SCALER_EXCLUDE_TAG",
        "scaler=off",
        "`name=value` of the agent-pool tag that keeps the scaler off a pool entirely.",
    ),
    SettingSpec(
        "SCALER_PROFILE_TAG",
        "scaler-schedule",
        "Name of the agent-pool tag whose value picks a profile of the schedule file.",
    ),
    SettingSpec(
        "SCALER_TIMER_SCHEDULE",
        "0 */5 * * * *",
        "NCRONTAB of the schedule timer (read by the Functions host).",
    ),
    SettingSpec(
        "SCALER_SCHEDULE_FILE",
        "schedule.toml",
        "The schedule file, relative to the app's folder (beside function_app.py).",
    ),
    SettingSpec(
        "SCALER_EVENTGRID_ENDPOINT",
        "",
        "Event Grid topic endpoint (https://…/api/events) that outcomes, pool changes and "
        "upcoming scheduled capacity cuts are published to as CloudEvents, with the app's "
        "identity. Empty: no events.",
    ),
    SettingSpec(
        "SCALER_NOTICE_MINUTES",
        "15",
        "How far ahead a scheduled change that lowers a pool's capacity is announced "
        "(`scaler.pool.change-upcoming`). 0: never.",
    ),
    SettingSpec(
        "SCALER_FLEET_LIST_MIN_CLUSTERS",
        "3",
        "A tick reads a subscription's pools with one paged `LIST managedClusters` when it "
        "reconciles at least this many clusters there (fewer: each cluster reads its own). "
        "0: never list.",
    ),
    SettingSpec(
        "SCALER_SCHEDULE_BLOB",
        "",
        "`container/blob` in the app's storage account holding the schedule; when set it is "
        "read on every run instead of the file, so it changes without a redeploy.",
    ),
)

_DEFAULTS = {spec.name: spec.default for spec in SETTINGS}


@dataclass(frozen=True)
class Settings:
    subscription_id: str
    client_id: str
    resource_group: str
    cluster: str
    allowed_clusters: tuple[str, ...]
    max_count: int
    arm_endpoint: str
    arm_scope: str
    max_attempts: int
    retry_base_seconds: int
    retry_max_seconds: int
    schedule_file: str
    schedule_blob: str
    max_lease: timedelta = timedelta(days=1)
    max_clock_skew: timedelta = timedelta(minutes=5)
    coalesce_seconds: float = 2.0
    coalesce_max_seconds: float = 30.0
    operation_seconds: float = 120.0
    tag_rules: TagRules = field(default_factory=TagRules)
    eventgrid_endpoint: str = ""
    notice_minutes: int = 15
    fleet_list_min_clusters: int = 3

    @property
    def default_cluster(self) -> ClusterRef | None:
        if not (self.subscription_id and self.resource_group and self.cluster):
            return None
        return ClusterRef(self.subscription_id, self.resource_group, self.cluster)

    def allows(self, cluster: ClusterRef) -> bool:
        """SCALER_ALLOWED_CLUSTERS (see domain/clusters.is_allowed): the one check every entry
        point makes before a cluster is read or written."""
        return is_allowed(
            cluster, self.allowed_clusters, self.default_cluster, self.subscription_id
        )

    def allowed_subscriptions(self) -> tuple[str, ...] | None:
        """The subscriptions the allowlist can reach (None: any, an entry has `*` there): where
        a tag search has to look."""
        return allowed_subscriptions(
            self.allowed_clusters, self.default_cluster, self.subscription_id
        )

    def intent_defaults(self) -> IntentDefaults:
        return IntentDefaults(
            self.subscription_id,
            self.resource_group,
            self.cluster,
            self.max_count,
            max_lease=self.max_lease,
            max_clock_skew=self.max_clock_skew,
            max_attempts=self.max_attempts,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env

        def text(name: str) -> str:
            return source.get(name, _DEFAULTS[name]).strip()

        def positive_int(name: str) -> int:
            raw = text(name)
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
            if value < 1:
                raise SettingsError(f"{name} must be at least 1, not {value}")
            return value

        def seconds(name: str) -> float:
            raw = text(name)
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
            if not 0 <= value <= 86400:
                raise SettingsError(f"{name} must be between 0 and 86400 seconds, not {raw}")
            return value

        def duration(name: str) -> timedelta:
            raw = text(name)
            try:
                value = isodate.parse_duration(raw)
            except (isodate.ISO8601Error, ValueError, OverflowError):
                value = None
            if not isinstance(value, timedelta) or not timedelta(0) < value <= timedelta(days=31):
                raise SettingsError(
                    f"{name} must be an ISO-8601 duration of at most 31 days (e.g. PT5M, P1D), "
                    f"not {raw!r}"
                )
            return value

        arm_endpoint = text("SCALER_ARM_ENDPOINT").rstrip("/")
        if not arm_endpoint.startswith("https://"):
            raise SettingsError(
                f"SCALER_ARM_ENDPOINT must be an https:// URL (bearer tokens never travel "
                f"over plain http), not {arm_endpoint!r}"
            )
        allowed = tuple(
            entry.strip() for entry in text("SCALER_ALLOWED_CLUSTERS").split(",") if entry.strip()
        )
        for entry in allowed:
            if entry.count("/") not in (1, 2) or not all(entry.split("/")):
                raise SettingsError(
                    f"SCALER_ALLOWED_CLUSTERS entry {entry!r} must look like resourceGroup/cluster "
                    "or subscriptionId/resourceGroup/cluster"
                )
        max_count = positive_int("SCALER_MAX_COUNT")
        if max_count > AKS_MAX_NODES_PER_POOL:
            raise SettingsError(
                f"SCALER_MAX_COUNT must be at most {AKS_MAX_NODES_PER_POOL} (the AKS limit per "
                f"pool), not {max_count}"
            )
        eventgrid_endpoint = text("SCALER_EVENTGRID_ENDPOINT")
        if eventgrid_endpoint and not eventgrid_endpoint.startswith("https://"):
            raise SettingsError(
                f"SCALER_EVENTGRID_ENDPOINT must be an https:// URL or empty, not "
                f"{eventgrid_endpoint!r}"
            )
        notice_raw = text("SCALER_NOTICE_MINUTES")
        if not notice_raw.isdigit() or int(notice_raw) > 1440:
            raise SettingsError(
                f"SCALER_NOTICE_MINUTES must be a whole number of minutes from 0 to 1440, "
                f"not {notice_raw!r}"
            )
        fleet_raw = text("SCALER_FLEET_LIST_MIN_CLUSTERS")
        if not fleet_raw.isdigit():
            raise SettingsError(
                f"SCALER_FLEET_LIST_MIN_CLUSTERS must be a whole number (0: never list), "
                f"not {fleet_raw!r}"
            )
        return cls(
            subscription_id=text("AZURE_SUBSCRIPTION_ID"),
            client_id=text("AZURE_CLIENT_ID"),
            resource_group=text("SCALER_RESOURCE_GROUP"),
            cluster=text("SCALER_CLUSTER"),
            allowed_clusters=allowed,
            max_count=max_count,
            arm_endpoint=arm_endpoint,
            arm_scope=text("SCALER_ARM_SCOPE"),
            max_attempts=positive_int("SCALER_MAX_ATTEMPTS"),
            retry_base_seconds=positive_int("SCALER_RETRY_BASE_SECONDS"),
            retry_max_seconds=positive_int("SCALER_RETRY_MAX_SECONDS"),
            schedule_file=text("SCALER_SCHEDULE_FILE"),
            schedule_blob=_blob_name(text("SCALER_SCHEDULE_BLOB")),
            max_lease=duration("SCALER_MAX_LEASE"),
            max_clock_skew=duration("SCALER_MAX_CLOCK_SKEW"),
            coalesce_seconds=seconds("SCALER_COALESCE_SECONDS"),
            coalesce_max_seconds=seconds("SCALER_COALESCE_MAX_SECONDS"),
            operation_seconds=seconds("SCALER_OPERATION_SECONDS"),
            tag_rules=_tag_rules(text("SCALER_EXCLUDE_TAG"), text("SCALER_PROFILE_TAG")),
            eventgrid_endpoint=eventgrid_endpoint,
            notice_minutes=int(notice_raw),
            fleet_list_min_clusters=int(fleet_raw),
        )


def _tag_rules(exclude: str, profile: str) -> TagRules:
    name, equals, value = exclude.partition("=")
    if not (name.strip() and equals and value.strip()):
        raise SettingsError(f"SCALER_EXCLUDE_TAG must look like name=value, not {exclude!r}")
    if not profile:
        raise SettingsError("SCALER_PROFILE_TAG must name a tag")
    return TagRules.parse(exclude, profile)


def _blob_name(value: str) -> str:
    container, _, blob = value.partition("/")
    if value and not (container and blob):
        raise SettingsError(f"SCALER_SCHEDULE_BLOB must look like container/blob, not {value!r}")
    return value
