"""nornir_coopchain: co-owner approval on a blockchain for changes to shared network equipment."""

from __future__ import annotations

__version__ = "0.1.0"
