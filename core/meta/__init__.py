"""Meta's Graph API: the client, its typed errors and Meta's objects as Rex reads them."""

from core.meta.client import BatchRequest, GraphClient
from core.meta.errors import (
    ConnectionFailedError,
    GraphError,
    InvalidParameterError,
    ObjectGoneError,
    PermissionDeniedError,
    RateLimitedError,
    TokenInvalidError,
    TransientError,
)
from core.meta.options import GraphOptions

__all__ = [
    "BatchRequest",
    "ConnectionFailedError",
    "GraphClient",
    "GraphError",
    "GraphOptions",
    "InvalidParameterError",
    "ObjectGoneError",
    "PermissionDeniedError",
    "RateLimitedError",
    "TokenInvalidError",
    "TransientError",
]
