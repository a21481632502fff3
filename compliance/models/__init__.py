from compliance.models.api_clients import ApiClient
from compliance.models.directory import SubjectDirectory, SuppressedIdentifier
from compliance.models.subjects import IdentifierType, Identity, Subject, SubjectKey, Suppression
from compliance.models.workers import WorkerHeartbeat

__all__ = [
    "ApiClient",
    "IdentifierType",
    "Identity",
    "Subject",
    "SubjectDirectory",
    "SubjectKey",
    "SuppressedIdentifier",
    "Suppression",
    "WorkerHeartbeat",
]
