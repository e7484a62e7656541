"""Strawberry's extension runner, with each extension class's hooks worked out once.

For every operation, Strawberry's runner inspects each extension's hook for each stage
(operation, parsing, validation, execution): a ``getattr`` and an ``inspect`` check per
extension and stage, and for each hook it finds a new ``contextlib`` wrapper, made by
``functools.update_wrapper``, around a new bound method. That was ~30 us of the ~530 a small
operation cost here. :class:`Runner` finds each (stage, extension class)'s hook once and
keeps its ``contextlib`` wrapper; the context managers entered are the same, in the same
order, by Strawberry's own stage classes (their ``__aenter__``/``__aexit__``).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# A hook's context manager factory (called with the extension) and whether it is async.
Factory = tuple[Callable[[SchemaExtension], Any], bool]

_UNSHARED: Final = "unshared"
"""A hook that is a plain callable: Strawberry wraps it per extension (its own ``get_hook``)."""

_FACTORIES: dict[tuple[str, type[SchemaExtension]], Factory | str | None] = {}


def _factory(stage: str, extension_class: type[SchemaExtension]) -> Factory | str | None:
    """The class's hook for ``stage`` as a factory; None when it has none."""
    key = (stage, extension_class)
    if key in _FACTORIES:
        return _FACTORIES[key]
    hook = getattr(extension_class, stage)
    found: Factory | str | None
    if hook is getattr(SchemaExtension, stage):
        found = None
    elif inspect.isgeneratorfunction(hook):
        found = (contextlib.contextmanager(hook), False)
    elif inspect.isasyncgenfunction(hook):
        found = (contextlib.asynccontextmanager(hook), True)
    else:
        found = _UNSHARED
    _FACTORIES[key] = found
    return found


class _Hooks(ExtensionContextManagerBase):
    """A stage's hooks from the shared factories (Strawberry's ``__init__`` otherwise)."""

    __slots__ = ()

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        self.hooks = []
        self.default_hook = getattr(SchemaExtension, self.HOOK_NAME)
        for extension in extensions:
            found = _factory(self.HOOK_NAME, type(extension))
            if found is None:
                continue
            if isinstance(found, str):
                hook = self.get_hook(extension)
                if hook is not None:
                    self.hooks.append(hook)
                continue
            make, is_async = found
            self.hooks.append(
                WrappedHook(extension=extension, hook=partial(make, extension), is_async=is_async)
            )


class _Operation(_Hooks, OperationContextManager):
    __slots__ = ()


class _Parsing(_Hooks, ParsingContextManager):
    __slots__ = ()


class _Validation(_Hooks, ValidationContextManager):
    __slots__ = ()


class _Executing(_Hooks, ExecutingContextManager):
    __slots__ = ()


class Runner(SchemaExtensionsRunner):
    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
