"""Settings that name a Python object as `package.module:attribute` (`APPROVALS_TOOLS`,
`APPROVALS_GRAPH`)."""

from __future__ import annotations

import importlib
from typing import Any


def import_attribute(setting: str, spec: str, error: type[ValueError]) -> Any:
    """The object `spec` names; what is wrong with it raises `error`, naming `setting`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{setting}={spec!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{setting}={spec!r}: cannot import {module_name}: {exc}") from exc
    try:
        target: Any = module
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise error(f"{setting}={spec!r}: {module_name} has no {attr!r}") from None
    return target
