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

import contextlib
import dataclasses
import operator
import tarfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "AmbiguousSplitError",
    "AppViewError",
    "ArrayLayoutError",
    "AppViewRequiredError",
    "AppViewUnavailableError",
    "ArgumentTypeError",
    "AtdataError",
    "AuthenticationError",
    "ConfigError",
    "DataNotFoundError",
    "DecodeError",
    "IntegrityError",
    "LengthUnknownError",
    "LensNotFoundError",
    "MissingCredentialsError",
    "MissingExtraError",
    "NotFoundError",
    "NothingWrittenError",
    "PartialFailureError",
    "PayloadTypeError",
    "QualityGateError",
    "RecordNotFoundError",
    "RemoteShardError",
    "SampleIndexError",
    "SampleKeyError",
    "SchemaError",
    "ShardChangedError",
    "ShardError",
    "ShardFailure",
    "SplitNotFoundError",
    "StorageError",
    "UnknownFieldError",
    "WorkerPickleError",
]


class AtdataError(Exception):
    """Base class of every error atdata raises deliberately."""


class SchemaError(AtdataError, TypeError):
    """A sample type or a payload does not fit its schema (bad field type, missing field)."""


class DecodeError(AtdataError, ValueError):
    """Bytes could not be decoded: not msgpack, a lying array header, a forbidden dtype."""


class PayloadTypeError(DecodeError, SchemaError):
    """A sample payload is msgpack, but not a map (e.g. an integer): it cannot be a sample.

    Both a :class:`DecodeError` (``ValueError``) and a :class:`SchemaError` (``TypeError``).
    """


class ShardError(AtdataError, OSError, tarfile.TarError):
    """A shard is missing, unreadable, truncated or not a tar archive.

    Also a :class:`tarfile.TarError`, so code written for tarfile-based readers catches it.
    """


class IntegrityError(AtdataError, ValueError):
    """Stored bytes disagree with their recorded checksum, size or manifest."""


class SampleKeyError(AtdataError, KeyError):
    """A sample key is invalid, duplicated or not found."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class SampleIndexError(AtdataError, IndexError):
    """A sample position is out of range (negative ones count from the end), or a boolean mask
    of positions does not have one entry per sample."""


class ArgumentTypeError(AtdataError, TypeError):
    """An argument of the wrong type: a float, ``None`` or a string as a sample position, a
    single integer where a sequence of positions is expected, a logger without its methods."""


class LengthUnknownError(AtdataError, TypeError):
    """``len()`` of a dataset whose length is unknown until it is read (a filtered one, or
    remote shards nothing has counted yet); the message says how to count it.

    A ``TypeError``, as for any object without a length, so ``list(ds)`` still works.
    """


class SplitNotFoundError(AtdataError, ValueError, KeyError):
    """A dataset split was asked for that does not exist (a ``ValueError``, as documented)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LensNotFoundError(AtdataError, ValueError, LookupError):
    """No lens (direct or composed) converts one sample type into another (a ``ValueError``)."""


class MissingExtraError(AtdataError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class ConfigError(AtdataError, ValueError):
    """An argument or a configuration value cannot work."""


class ArrayLayoutError(ConfigError):
    """An array does not fit the Arrow column laid out for its field from the first batch.

    Attributes:
        field_path: The field (``"img"``, ``"meta.mask"``).
        fallback: A layout that holds it (``"list"`` or ``"bytes"``).
    """

    def __init__(self, message: str, field_path: str = "", fallback: str = "bytes") -> None:
        super().__init__(message)
        self.field_path = field_path
        self.fallback = fallback


class WorkerPickleError(ConfigError, TypeError):
    """Something a DataLoader worker must receive or send cannot be pickled (a sample type or a
    transform defined inside a function, a lambda under the ``spawn`` start method); raised
    before the worker would hang, naming the object and the fix (also a ``TypeError``)."""


class NothingWrittenError(ConfigError, RuntimeError):
    """A data store was asked to write a dataset with no samples or shards, so nothing was
    written (a ``ValueError`` and, as upstream documents for ``write_shards``, a
    ``RuntimeError``)."""


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


@dataclasses.dataclass(frozen=True)
class ShardFailure:
    """Why one shard failed in :meth:`~atdata.Dataset.process_shards` or ``Dataset.map(out=...)``.

    Attributes:
        shard: The input shard identifier.
        kind: ``"exception"`` (the function or the reading raised), ``"worker_died"`` (the worker
            process ended without answering, e.g. killed for memory) or ``"timeout"``.
        message: One line: the exception's type and message, or how the worker ended.
        traceback: The formatted traceback text (empty when the worker died or timed out).
        attempts: How many times the shard was tried.
        exit_code: The worker's exit code for ``"worker_died"`` (negative: killed by that signal).
        exc_type: The exception's class name (``""`` when the worker died or timed out).
    """

    shard: str
    kind: str
    message: str
    traceback: str = ""
    attempts: int = 1
    exit_code: int | None = None
    exc_type: str = ""


class PartialFailureError(AtdataError, RuntimeError):
    """Some shards failed while others succeeded (:meth:`~atdata.Dataset.process_shards`).

    Args:
        succeeded_shards: Identifiers of the shards that succeeded, in shard order.
        failed_shards: Identifiers of the shards that failed, in shard order.
        errors: Shard identifier -> the exception it raised (for a shard processed in a worker
            process, an exception rebuilt from the worker's report).
        results: Shard identifier -> result, for the shards that succeeded.
        failures: Shard identifier -> :class:`ShardFailure` (kind, message, traceback, attempts);
            built from ``errors`` when not given.

    Call :meth:`retry` to run only the failed shards again, with the same function and options.

    Examples:
        >>> err = PartialFailureError(["a.tar"], ["b.tar"], {"b.tar": ValueError("bad row")}, {"a.tar": 3})
        >>> print(err)
        1/2 shards failed during processing
          b.tar: bad row
        <BLANKLINE>
        Inspect .succeeded_shards (1) and .failed_shards (1), or call .retry() to redo only the failed ones.
        >>> err.failures["b.tar"].kind, err.failures["b.tar"].exc_type
        ('exception', 'ValueError')
    """

    def __init__(
        self,
        succeeded_shards: Sequence[str],
        failed_shards: Sequence[str],
        errors: Mapping[str, BaseException],
        results: Mapping[str, object],
        failures: Mapping[str, ShardFailure] | None = None,
    ) -> None:
        self.succeeded_shards: list[str] = list(succeeded_shards)
        self.failed_shards: list[str] = list(failed_shards)
        self.errors: dict[str, BaseException] = dict(errors)
        self.results: dict[str, Any] = dict(results)
        if failures is None:
            failures = {
                s: ShardFailure(s, "exception", str(e), exc_type=type(e).__name__)
                for s, e in self.errors.items()
            }
        self.failures: dict[str, ShardFailure] = dict(failures)
        self._retry: Callable[[], Any] | None = None
        super().__init__(self._describe())

    def _describe(self) -> str:
        ok, bad = len(self.succeeded_shards), len(self.failed_shards)
        lines = [f"{bad}/{ok + bad} shards failed during processing"]
        for shard in self.failed_shards[:5]:
            f = self.failures.get(shard)
            why = self.errors.get(shard, f.message if f else "")
            extra = ""
            if f is not None and f.kind != "exception":
                extra = f" [{f.kind}, {f.attempts} attempt{'s' if f.attempts != 1 else ''}]"
            lines.append(f"  {shard}: {why}{extra}")
        if bad > 5:
            lines.append(f"  ... and {bad - 5} more")
        lines.append("")
        lines.append(
            f"Inspect .succeeded_shards ({ok}) and .failed_shards ({bad}), "
            "or call .retry() to redo only the failed ones."
        )
        return "\n".join(lines)

    def retry(self) -> Any:
        """Run only the failed shards again, with the same function and options.

        Returns:
            What the original call returns on success: for ``process_shards`` the results of all
            shards (earlier successes included), for ``Dataset.map(out=...)`` the output dataset.

        Raises:
            PartialFailureError: When shards fail again (its ``retry()`` works the same way).
            ConfigError: When this error was not raised by a call that can be retried.
        """
        if self._retry is None:
            raise ConfigError(
                "this PartialFailureError was built by hand, so there is nothing to retry; "
                "call process_shards(fn, shards=err.failed_shards) instead"
            )
        return self._retry()


class RemoteShardError(AtdataError, RuntimeError):
    """An exception raised in a worker process, rebuilt from its report (type name + message).

    The original exception object is not sent back (results travel as msgpack, never pickle);
    ``exc_type`` names its class and ``traceback`` holds the worker's traceback text.
    """

    def __init__(self, message: str, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.traceback = traceback


class QualityGateError(AtdataError, ValueError):
    """An ingestion stopped because too many input rows were invalid (``max_invalid_fraction``).

    The shards sealed before the stop stay in place with their progress record, so a rerun
    (with fixed input or a higher threshold) resumes after the last sealed shard.

    Attributes:
        read: Rows read when the gate tripped.
        invalid: Invalid rows among them.
        by_reason: Invalid rows per reason (``"parse"``, ``"coerce"``, ``"validate"``).
    """

    def __init__(
        self,
        message: str,
        read: int = 0,
        invalid: int = 0,
        by_reason: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.read = read
        self.invalid = invalid
        self.by_reason = dict(by_reason or {})


class ShardChangedError(ShardError):
    """A local shard file is no longer the file a dataset indexed (rewritten in place, replaced or
    renamed over since): its samples may have moved, so it is not read at the offsets noted
    for the old file. A :class:`ShardError` (an ``OSError``)."""


class DataNotFoundError(ShardError, FileNotFoundError):
    """No shard, manifest or other data file (a lexicon document) exists where one was asked for
    (a ``FileNotFoundError``)."""


class AmbiguousSplitError(ConfigError, AttributeError):
    """A ``Dataset`` method asked of a :class:`~atdata.DatasetDict` that holds other than one
    split, so which split is meant is unknown (also an ``AttributeError``: ``hasattr`` is False)."""


class UnknownFieldError(SchemaError, AttributeError, KeyError):
    """A field name that the schema (or its manifests, or a :class:`~atdata.DictSample`) does not
    have: also an ``AttributeError`` (so ``hasattr`` works on field sets and samples) and a
    ``KeyError`` (``sample["name"]``, ``Q["name"]``)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotFoundError(AtdataError, KeyError):
    """A dataset, entry (by name or CID), schema, label or lens is not in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AppViewError(AtdataError):
    """An operation that goes through an ATProto AppView (search, resolution) failed."""


class AppViewUnavailableError(AppViewError, ConnectionError):
    """An AppView is configured but cannot be reached or answered with an error.

    Attributes:
        url: The AppView's URL.
        reason: What went wrong.

    Examples:
        >>> e = AppViewUnavailableError("https://appview.example", "HTTP 503")
        >>> e.url, isinstance(e, ConnectionError), "HTTP 503" in str(e)
        ('https://appview.example', True, True)
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"AppView at {url} is unavailable: {reason}; check the URL and your network, "
            "or retry without the AppView"
        )

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class AppViewRequiredError(AppViewError, ValueError):
    """An operation needs an AppView but none is configured.

    Attributes:
        operation: The operation that needs it.

    Examples:
        >>> AppViewRequiredError("search").operation
        'search'
    """

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(
            f"{operation!r} needs an ATProto AppView; configure one on the Atmosphere client "
            "(its appview URL) and try again"
        )


def as_both(ours: type[AtdataError], foreign: BaseException, message: str) -> AtdataError:
    """An error that is both ``ours`` and ``type(foreign)``, with ``message`` as its text.

    Errors of an optional backend (a Redis ``RedisError``, a botocore ``ClientError``) are
    re-raised this way, so ``except StorageError`` and ``except RedisError`` both catch them;
    the foreign error's attributes (``response``, ...) are kept. When the two classes cannot be
    combined, a plain ``ours`` is returned.

    Examples:
        >>> class VendorError(Exception):
        ...     pass
        >>> e = as_both(StorageError, VendorError("boom"), "backend at x failed: boom")
        >>> isinstance(e, StorageError), isinstance(e, VendorError), str(e)
        (True, True, 'backend at x failed: boom')
    """
    key = (ours, type(foreign))
    cls = _BOTH.get(key)
    if cls is None:
        try:
            cls = type(ours.__name__, (ours, type(foreign)), {"__module__": ours.__module__})
        except TypeError:
            cls = ours
        _BOTH[key] = cls
    err: AtdataError = cls.__new__(cls, message)
    if cls is not ours:
        for k, v in getattr(foreign, "__dict__", {}).items():
            setattr(err, k, v)
    err.args = (message,)
    return err


_BOTH: dict[tuple[type, type], type[AtdataError]] = {}


def in_sample(exc: Exception, shard: str, key: str) -> Exception:
    """A copy of ``exc`` (same class) whose message also names the shard and the sample key.

    Examples:
        >>> str(in_sample(DecodeError("bad array"), "a.tar", "k1"))
        "bad array (shard a.tar, sample 'k1')"
    """
    return type(exc)(f"{exc} (shard {shard}, sample {key!r})")


def shard_open_error(shard: str, exc: OSError, origin: str = "") -> ShardError:
    """The error for a shard that cannot be opened: :class:`DataNotFoundError` (also a
    ``FileNotFoundError``) when it does not exist, else :class:`ShardError`. ``origin`` says
    what the shard belongs to (a source's ``origin``, e.g. an index entry, with the fix).

    Examples:
        >>> type(shard_open_error("a.tar", FileNotFoundError(2, "No such file"))).__name__
        'DataNotFoundError'
    """
    if isinstance(exc, FileNotFoundError):
        return DataNotFoundError(f"shard not found: {shard}{f' ({origin})' if origin else ''}")
    return ShardError(f"cannot open shard {shard}: {exc.strerror}")


def count_arg(name: str, value: Any, least: int) -> int:
    """``value`` as an ``int`` >= ``least``, else a :class:`ConfigError` naming ``name``
    (booleans and floats are refused, not truncated).

    Examples:
        >>> count_arg("maxcount", 3, 1)
        3
        >>> count_arg("maxcount", 1.5, 1)
        Traceback (most recent call last):
        ...
        atdata._errors.ConfigError: maxcount must be an integer >= 1, got 1.5 (float)
    """
    v: int | None = None
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):  # (numpy's bool too)
        with contextlib.suppress(TypeError):
            v = operator.index(value)
    if v is None:
        raise ConfigError(
            f"{name} must be an integer >= {least}, got {value!r:.40} ({type(value).__name__})"
        )
    if v < least:
        raise ConfigError(f"{name} must be >= {least}, got {v}")
    return v
