"""The result keys of a stored execution record, kept compact for a large fleet.

A fleet scheduler writes one results object per component, and its execution record lists
them all: about 55 bytes a key, so 10,000 components make 550 KB, past the 400 KB one
DynamoDB item holds. Past :data:`COMPACT_KEYS_OVER` keys the record keeps their shared
prefix and suffix and each one's middle instead (``result_keys_compact``); every reader of
a stored record reads the keys through :func:`stored_result_keys`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COMPACT_KEYS_OVER = 1000
"""Past this many result keys a stored execution record keeps them compacted."""


def compact_keys(keys: Sequence[str]) -> dict[str, Any] | None:
    """``{prefix, suffix, middles}`` with every key ``prefix + middle + suffix``, the prefix
    ending and the suffix starting at a ``/``; None when the keys share no such form."""
    prefix = _shared_start(keys)
    prefix = prefix[: prefix.rfind("/") + 1]
    suffix = _shared_start([k[len(prefix) :][::-1] for k in keys])[::-1]
    suffix = suffix[suffix.find("/") :] if "/" in suffix else ""
    middles = [k[len(prefix) : len(k) - len(suffix)] for k in keys]
    if not all(middles) or any(
        prefix + m + suffix != k for m, k in zip(middles, keys, strict=True)
    ):
        return None
    return {"prefix": prefix, "suffix": suffix, "middles": middles}


def _shared_start(texts: Sequence[str]) -> str:
    """The longest start every text shares (that of the least and the greatest)."""
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def stored_result_keys(doc: Mapping[str, Any]) -> list[str]:
    """Every result key of a stored execution record, compacted or not.

    Records come back from stores and exports a user can edit (the dashboard and
    ``query`` read them as found), so a field of the wrong shape gives no key rather than
    an exception: a key is a string, and nothing else is taken for one."""
    compact = doc.get("result_keys_compact")
    if isinstance(compact, Mapping):
        prefix, suffix = compact.get("prefix"), compact.get("suffix")
        middles = compact.get("middles")
        if not (isinstance(prefix, str) and isinstance(suffix, str) and isinstance(middles, list)):
            return []
        return [f"{prefix}{m}{suffix}" for m in middles if isinstance(m, str)]
    keys = doc.get("result_keys")
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list | tuple) else []
