"""Times as people write and read them: ISO 8601 with a zone, stored as unix seconds."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso", "to_unix"]


def to_unix(value: object) -> object:
    """Unix seconds for an aware ``datetime`` or an ISO 8601 string with a zone.

    Anything else is returned unchanged (an int is already unix seconds; the caller's own
    validation judges the rest), so it serves as a pydantic ``BeforeValidator``.

    Raises:
        ValueError: the string is not ISO 8601, the time has no zone, or it is not a whole
            second.
    """
    if isinstance(value, str):
        text = value.strip()
        try:  # Python 3.10's fromisoformat does not read a trailing Z
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                f"{value.isoformat()} has no time zone: write one (e.g. 2030-01-31T22:00Z or "
                "+01:00)"
            )
        seconds = value.timestamp()
        if seconds != int(seconds):
            raise ValueError(f"{value.isoformat()} is not a whole second")
        return int(seconds)
    return value


def iso(timestamp: int | float) -> str:
    """A unix time as ISO 8601 in UTC, to the second: ``2030-01-31T22:00:00+00:00``."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).isoformat(timespec="seconds")
