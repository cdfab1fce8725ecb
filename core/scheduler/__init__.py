"""The scheduler sidecar (`python -m core.scheduler`): see service.py."""
