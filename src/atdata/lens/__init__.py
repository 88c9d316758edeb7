"""``atdata.lens``: bidirectional views between sample types (:class:`Lens`, :class:`LensNetwork`).

``atdata.lens`` is both this module and the ``@lens`` decorator: the module is callable, so
``@atdata.lens`` works whichever of the two a user's import left bound to the name.

Examples:
    >>> import atdata.lens
    >>> callable(atdata.lens)
    True
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from atdata._lazy import lazy_module

_LAZY: dict[str, str] = {
    "Lens": "atdata.lens._lens",
    "LensGetter": "atdata.lens._lens",
    "LensNetwork": "atdata.lens._lens",
    "LensNotFoundError": "atdata._errors",
    "LensPutter": "atdata.lens._lens",
    "Packable": "atdata._wire.sample",
    "S": "atdata.lens._lens",
    "V": "atdata.lens._lens",
    "W": "atdata.lens._lens",
    "lens": "atdata.lens._lens",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module(globals(), _LAZY)


class _CallableModule(types.ModuleType):
    """This module's type: calling the module calls the ``lens`` decorator."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from atdata.lens._lens import lens as _lens

        return _lens(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if TYPE_CHECKING:  # pragma: no cover
    from atdata._errors import LensNotFoundError
    from atdata._wire.sample import Packable
    from atdata.lens._lens import Lens, LensGetter, LensNetwork, LensPutter, S, V, W, lens
