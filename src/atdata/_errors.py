"""The atdata error hierarchy.

Every error atdata raises on purpose derives from :class:`AtdataError` and also from the
built-in exception a caller would naturally catch (``KeyError``, ``ValueError``, ...), so code
written against either keeps working.

Examples:
    >>> from atdata import AtdataError, SampleKeyError
    >>> issubclass(SampleKeyError, KeyError) and issubclass(SampleKeyError, AtdataError)
    True
"""

from __future__ import annotations

__all__ = [
    "AtdataError",
    "AuthenticationError",
    "ConfigError",
    "DecodeError",
    "IntegrityError",
    "LensNotFoundError",
    "MissingCredentialsError",
    "MissingExtraError",
    "RecordNotFoundError",
    "SampleKeyError",
    "SchemaError",
    "ShardError",
    "SplitNotFoundError",
    "StorageError",
]


class AtdataError(Exception):
    """Base class of every error atdata raises deliberately."""


class SchemaError(AtdataError, TypeError):
    """A sample type or a payload does not fit its schema (bad field type, missing field)."""


class DecodeError(AtdataError, ValueError):
    """Bytes could not be decoded: not msgpack, a lying array header, a forbidden dtype."""


class ShardError(AtdataError, OSError):
    """A shard is missing, unreadable, truncated or not a tar archive."""


class IntegrityError(AtdataError, ValueError):
    """Stored bytes disagree with their recorded checksum, size or manifest."""


class SampleKeyError(AtdataError, KeyError):
    """A sample key is invalid, duplicated or not found."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class SplitNotFoundError(AtdataError, KeyError):
    """A dataset split was asked for that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LensNotFoundError(AtdataError, LookupError):
    """No lens (direct or composed) converts one sample type into another."""


class MissingExtraError(AtdataError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class ConfigError(AtdataError, ValueError):
    """An argument or a configuration value cannot work."""


class MissingCredentialsError(ConfigError, OSError):
    """Credentials expected in the environment are not set (an ``EnvironmentError`` too)."""


class StorageError(AtdataError, OSError):
    """A storage backend (index provider, data store, remote service) failed or is unreachable."""


class RecordNotFoundError(StorageError, KeyError):
    """An ATProto record (or a name that should point at one) does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AuthenticationError(AtdataError, PermissionError):
    """A login failed, or a saved session is expired or revoked (the message says to log in again)."""


def in_sample(exc: Exception, shard: str, key: str) -> Exception:
    """A copy of ``exc`` (same class) whose message also names the shard and the sample key.

    Examples:
        >>> str(in_sample(DecodeError("bad array"), "a.tar", "k1"))
        "bad array (shard a.tar, sample 'k1')"
    """
    return type(exc)(f"{exc} (shard {shard}, sample {key!r})")
