"""How the Graph client talks to Meta: one frozen value instead of a dozen keywords.

`GraphOptions.from_settings()` reads them from the settings (README: Settings); a test or
a caller that needs other limits changes a copy with `dataclasses.replace`. The client
reads nothing from the settings itself, so what a client does is what its options say.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from core.meta.retry import RetryLimits
from core.settings import Settings, get_settings


@dataclass(frozen=True)
class GraphOptions:
    """Where the Graph API is and how long, how often and how fast to call it."""

    base_url: str = "https://graph.facebook.com"  # an account's own Graph URL wins
    version: str = "v26.0"
    app_secret: SecretStr | None = None  # set: every call carries appsecret_proof
    timeout_seconds: float = 30.0  # total deadline of one call, answer included
    read_deadline_seconds: float = 900.0  # every page of one read
    max_pages: int = 2000  # pages of one read
    max_retries: int = 4  # of transient failures and short rate limits
    backoff_seconds: float = 1.0  # base of the exponential backoff (full jitter)
    max_inline_wait_seconds: float = 60.0  # a rate limit regaining sooner is waited out
    async_max_wait_seconds: float = 600.0  # an async insights report
    poll_seconds: float = 0.5  # first interval between polls of an async report

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> GraphOptions:
        settings = settings or get_settings()
        return cls(
            base_url=settings.graph_base_url,
            version=settings.graph_api_version,
            app_secret=settings.meta_app_secret or None,
            timeout_seconds=settings.graph_timeout_seconds,
            read_deadline_seconds=settings.graph_read_deadline_seconds,
            max_pages=settings.graph_max_pages,
            max_retries=settings.graph_max_retries,
            backoff_seconds=settings.graph_backoff_seconds,
            max_inline_wait_seconds=settings.graph_max_inline_wait_seconds,
            async_max_wait_seconds=settings.sync_async_max_wait_seconds,
        )

    @property
    def retry(self) -> RetryLimits:
        return RetryLimits(
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            max_inline_wait_seconds=self.max_inline_wait_seconds,
        )
