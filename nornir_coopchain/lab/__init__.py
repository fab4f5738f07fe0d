"""An FRRouting lab in Linux network namespaces: the sample tower site on real routing
software, reached over SSH like production devices.

``lab_up(n, root)`` builds ``n`` site routers (zebra, staticd, bgpd and an sshd each, in
their own namespace), one PE per tenant and a switch namespace, and writes a Nornir
inventory for them (``platform: frr``, the :mod:`napalm_frr` driver); ``lab_down(root)``
removes all of it. Needs root and the Debian packages ``frr frr-pythontools
openssh-server``. See :mod:`nornir_coopchain.lab.plan` for the topology.
"""

from __future__ import annotations

from nornir_coopchain.lab.errors import LabError
from nornir_coopchain.lab.manage import (
    PACKAGES,
    LabInfo,
    LabStatus,
    PEInfo,
    RouterInfo,
    RouterStatus,
    check_prerequisites,
    default_site,
    lab_down,
    lab_status,
    lab_up,
    load_info,
    set_daemon,
    set_sshd,
)

__all__ = [
    "PACKAGES",
    "LabError",
    "LabInfo",
    "LabStatus",
    "PEInfo",
    "RouterInfo",
    "RouterStatus",
    "check_prerequisites",
    "default_site",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_info",
    "set_daemon",
    "set_sshd",
]
