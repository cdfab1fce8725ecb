"""Sync: accounts, entities, daily metrics and the four breakdown tables, from Meta."""

from core.sync.runner import Progress, SyncOptions, SyncResult, sync_account, sync_accounts

__all__ = ["Progress", "SyncOptions", "SyncResult", "sync_account", "sync_accounts"]
