"""The lab's one error: something the lab asked of the kernel, FRR or sshd did not happen."""

from __future__ import annotations

from nornir_coopchain.exceptions import CoopchainError

__all__ = ["LabError"]


class LabError(CoopchainError):
    """Raised when building, checking or tearing down the lab fails at run time.

    Input problems (not root, binaries missing, a bad router count or directory) are
    :class:`~nornir_coopchain.exceptions.ConfigError` instead.

    Attributes:
        command: the command that failed, when one did.
        output: what it printed (stdout and stderr), when it ran.
    """

    def __init__(self, message: str, *, command: str | None = None, output: str = "") -> None:
        self.command = command
        self.output = output
        detail = f" (`{command}`: {output.strip()[-400:]})" if command else ""
        super().__init__(f"{message}{detail}")
