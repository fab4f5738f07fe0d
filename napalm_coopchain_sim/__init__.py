"""A SIMULATED NAPALM driver (platform ``coopchain_sim``) for demos and scale runs.

NAPALM finds it by community naming: ``get_network_driver("coopchain_sim")`` imports this
module, ``napalm_coopchain_sim``, and takes its ``NetworkDriver`` subclass, so a Nornir host
with ``platform: coopchain_sim`` works through nornir_napalm unchanged. It talks to no
device; never use it in place of a real device in lab tests.
"""

from __future__ import annotations

from napalm_coopchain_sim.driver import SIM_OS_VERSION, SIM_VENDOR, CoopchainSimDriver
from napalm_coopchain_sim.store import clear_memory_devices

__all__ = ["SIM_OS_VERSION", "SIM_VENDOR", "CoopchainSimDriver", "clear_memory_devices"]
