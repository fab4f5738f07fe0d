"""Nornir connection plugins."""

from nornir_coopchain.plugins.connections.coopchain import CONNECTION_NAME, CoopchainConnection

__all__ = ["CONNECTION_NAME", "CoopchainConnection"]
