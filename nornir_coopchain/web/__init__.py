"""The read-only web dashboard (``coopchain serve``): proposals, diffs, votes, evidence, live.

:func:`~nornir_coopchain.web.app.create_app` builds the ASGI app over a
:class:`~nornir_coopchain.web.views.Dashboard`, which reads the chain bindings, the gate's
audit and the operator's journal; see docs/dashboard.md.
"""

from __future__ import annotations

from nornir_coopchain.web.app import create_app
from nornir_coopchain.web.views import Dashboard

__all__ = ["Dashboard", "create_app"]
