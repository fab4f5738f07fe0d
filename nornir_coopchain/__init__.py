"""nornir_coopchain: co-owner approval on a blockchain for changes to shared network equipment.

What a playbook needs, importable from here (loaded on first use, so that importing a lower
layer such as :mod:`nornir_coopchain.model` stays light)::

    from nornir_coopchain import ChangeWindow, coopchain_session, run_gated_change

The Nornir tasks are in :mod:`nornir_coopchain.plugins.tasks`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nornir_coopchain.gate import dry_run_change, run_emergency_change, run_gated_change
    from nornir_coopchain.model.content import ChangeWindow
    from nornir_coopchain.plugins.connections.coopchain import coopchain_session

__version__ = "0.1.0"

__all__ = [
    "ChangeWindow",
    "__version__",
    "coopchain_session",
    "dry_run_change",
    "run_emergency_change",
    "run_gated_change",
]

_LAZY = {
    "ChangeWindow": "nornir_coopchain.model.content",
    "coopchain_session": "nornir_coopchain.plugins.connections.coopchain",
    "dry_run_change": "nornir_coopchain.gate",
    "run_emergency_change": "nornir_coopchain.gate",
    "run_gated_change": "nornir_coopchain.gate",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
