"""A NAPALM driver for FRRouting (platform ``frr``), over SSH with netmiko and vtysh.

NAPALM finds it by community naming: ``get_network_driver("frr")`` imports this module,
``napalm_frr``, and takes its ``NetworkDriver`` subclass, so a Nornir host with
``platform: frr`` works through nornir_napalm unchanged. See :class:`FRRDriver` for the
design (candidate on the device, ``frr-reload.py`` diff and apply, rollback, and the
commit-confirm timer on the device).
"""

from __future__ import annotations

from napalm_frr.driver import FRR_VENDOR, FRRDriver, RollbackIncomplete
from napalm_frr.options import FRROptions

__all__ = ["FRR_VENDOR", "FRRDriver", "FRROptions", "RollbackIncomplete"]
