"""The sandbox: a Graph-API-compatible server on loopback with generated ad accounts.

See docs/sandbox.md. Rex's tests talk to it over real HTTP; `make run` starts one so a
new user can try Rex without a Meta login.
"""

from core.sandbox.faults import FaultConfig
from core.sandbox.scenario import ScenarioError, load_scenario
from core.sandbox.server import SandboxServer, SandboxStateError, run_server

__all__ = [
    "FaultConfig",
    "SandboxServer",
    "SandboxStateError",
    "ScenarioError",
    "load_scenario",
    "run_server",
]
