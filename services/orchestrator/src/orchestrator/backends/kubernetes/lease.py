"""Leader election with a `coordination.k8s.io/v1` Lease, so two replicas never act twice.

The Lease names its holder and when it last renewed. A replica acts only while it holds
the Lease and its own last renewal is younger than the lease duration; it renews every
`renew_seconds`. A missing Lease is taken by creating it (one create wins, the rest get
409); a renewal, and the takeover of an expired Lease, is a merge patch carrying the
`resourceVersion` the replica read, which the API server treats as a precondition (409
when someone wrote in between): two replicas racing for the Lease cannot both win.
Losing the Lease (another holder, a 409, no renewal in time) stops acting at once.

Whether another holder's Lease has expired is judged as client-go does, by this
replica's own monotonic clock: the Lease must stay unchanged (the same resourceVersion,
holder and renewTime) for its whole duration since this replica first saw it so,
whatever the two machines' wall clocks say. A clean stop releases the Lease by emptying
its holder, on the version this replica wrote last (never a delete that could remove a
successor's Lease); a Lease without a holder is taken at once.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.types import PatchType

from orchestrator.backends.kubernetes.api import CONFLICT, NOT_FOUND, Failure, status_of

LEASE_NAME = "orchestrator-controller"


@dataclass(frozen=True)
class LeaseTimes:
    duration_seconds: int = 15
    renew_seconds: float = 5.0


DEFAULT_LEASE = LeaseTimes()


class LeaderElector:
    def __init__(
        self, client: AsyncClient, namespace: str, identity: str, times: LeaseTimes = DEFAULT_LEASE
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity
        self.times = times
        self._renewed: float | None = None  # time.monotonic() of our last renewal
        self._version: str | None = None  # the resourceVersion of our last write
        # another holder's Lease as last read (version, holder, renewTime), and since when
        self._seen: tuple[object, float] | None = None

    @property
    def leading(self) -> bool:
        if self._renewed is None:
            return False
        return time.monotonic() - self._renewed < self.times.duration_seconds

    async def step(self) -> bool:
        """Take, keep or lose the Lease; whether this replica leads now."""
        try:
            lease = await self.client.get(Lease, LEASE_NAME, namespace=self.namespace)
        except Failure as exc:
            if status_of(exc) != NOT_FOUND:
                raise
            return await self._create()
        spec = lease.spec or LeaseSpec()
        version = lease.metadata.resourceVersion if lease.metadata else None
        if spec.holderIdentity != self.identity:
            self._renewed = None
            if spec.holderIdentity and not self._expired(version, spec):
                return False
        self._seen = None
        return await self._write(version, taken=spec.holderIdentity != self.identity)

    def _expired(self, version: str | None, spec: LeaseSpec) -> bool:
        """Whether another holder's Lease has not changed for its duration, as this
        replica's monotonic clock measures it from when it first read this version."""
        now = time.monotonic()
        record = (version, spec.holderIdentity, spec.renewTime)
        if self._seen is None or self._seen[0] != record:
            self._seen = (record, now)
            return False
        return now - self._seen[1] >= (spec.leaseDurationSeconds or 0)

    async def release(self) -> None:
        """Give the Lease up (on a clean stop), so another replica takes over at once: its
        holder emptied, only if nobody wrote since our last renewal."""
        if self.leading:
            self._renewed = None
            patch: dict[str, object] = {"spec": {"holderIdentity": "", "renewTime": _micro(_now())}}
            if self._version is not None:
                patch["metadata"] = {"resourceVersion": self._version}
            with suppress(Failure):  # it expires anyway
                await self.client.patch(
                    Lease, LEASE_NAME, patch, namespace=self.namespace, patch_type=PatchType.MERGE
                )

    async def _create(self) -> bool:
        now = _now()
        lease = Lease(
            metadata=ObjectMeta(name=LEASE_NAME, namespace=self.namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=self.times.duration_seconds,
                acquireTime=now,
                renewTime=now,
            ),
        )
        try:
            created = await self.client.create(lease)
        except Failure as exc:
            if status_of(exc) == CONFLICT:
                return False
            raise
        self._renewed = time.monotonic()
        self._version = created.metadata.resourceVersion if created.metadata else None
        return True

    async def _write(self, version: str | None, *, taken: bool) -> bool:
        """Renew the Lease, or take it over (`taken`), if nobody wrote since we read it."""
        now = _micro(_now())
        spec: dict[str, object] = {"holderIdentity": self.identity, "renewTime": now}
        if taken:
            spec |= {"acquireTime": now, "leaseDurationSeconds": self.times.duration_seconds}
        patch: dict[str, object] = {"spec": spec}
        if version is not None:
            patch["metadata"] = {"resourceVersion": version}
        try:
            written = await self.client.patch(
                Lease, LEASE_NAME, patch, namespace=self.namespace, patch_type=PatchType.MERGE
            )
        except Failure as exc:
            if status_of(exc) in (CONFLICT, NOT_FOUND):
                self._renewed = None
                return False
            raise
        self._renewed = time.monotonic()
        self._version = written.metadata.resourceVersion if written.metadata else None
        return True


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    """A MicroTime, as the API server writes a Lease's times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
