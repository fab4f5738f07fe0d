"""The ``coopchain_*`` Nornir tasks, one per module (keep ``__all__`` alphabetical)."""

from __future__ import annotations

from nornir_coopchain.plugins.tasks.coopchain_apply import coopchain_apply
from nornir_coopchain.plugins.tasks.coopchain_prepare import coopchain_prepare
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render
from nornir_coopchain.plugins.tasks.coopchain_verify import coopchain_verify

__all__ = ["coopchain_apply", "coopchain_prepare", "coopchain_render", "coopchain_verify"]
