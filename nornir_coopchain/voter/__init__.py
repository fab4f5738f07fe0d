"""A member's automatic voter.

- :mod:`.policy`: the YAML voting policy and :func:`~.policy.decide` (pure: no chain, no
  clock, no device access).
- :mod:`.watch`: the long-running voter that applies a policy to each new proposal (it talks
  to the chain; import it explicitly).
"""

from __future__ import annotations

from nornir_coopchain.voter.policy import (
    Conditions,
    DailyHours,
    Decision,
    VoterPolicy,
    decide,
)

__all__ = ["Conditions", "DailyHours", "Decision", "VoterPolicy", "decide"]
