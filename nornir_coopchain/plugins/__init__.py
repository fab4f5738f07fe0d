"""Nornir plugins: the ``coopchain`` connection, the ``coopchain_*`` tasks and processors."""
