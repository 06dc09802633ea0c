"""All tables, one module per part of the line; importing this registers them all."""

from trayline.store.models.base import Base, UtcDateTime, utcnow
from trayline.store.models.cloud import CloudCall, SerialLookup
from trayline.store.models.firmware import FirmwareBundle, FirmwareBundleModule
from trayline.store.models.flash import FlashRecord
from trayline.store.models.line import Event, Part, Unit
from trayline.store.models.outbox import ImportedManifest, OutboxMessage, TrustedKey
from trayline.store.models.provisioning import ProvisioningDevice, ProvisioningJob

__all__ = [
    "Base",
    "CloudCall",
    "Event",
    "FirmwareBundle",
    "FirmwareBundleModule",
    "FlashRecord",
    "ImportedManifest",
    "OutboxMessage",
    "Part",
    "ProvisioningDevice",
    "ProvisioningJob",
    "SerialLookup",
    "TrustedKey",
    "Unit",
    "UtcDateTime",
    "utcnow",
]
