"""The ``coopchain_*`` Nornir tasks, one per module (keep ``__all__`` alphabetical)."""

from __future__ import annotations

from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render

__all__ = ["coopchain_render"]
