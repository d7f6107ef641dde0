"""Order-independent digests: a sum of 128-bit per-item hashes, so no sorting is needed, and a
digest can be updated item by item (subtract what left, add what came)."""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Iterable

__all__ = ["MASK", "SEP", "customer_item", "hash_sum", "link_item", "row_sums"]

SEP = "\x1f"
MASK = (1 << 128) - 1

_hash16 = functools.partial(hashlib.blake2b, digest_size=16)
_digest = operator.methodcaller("digest")
_to_int = functools.partial(int.from_bytes, byteorder="big")


def hash_sum(texts: Iterable[str]) -> int:
    """The sum of the 128-bit BLAKE2b hashes of ``texts`` (iterated in C: no frame per item)."""
    hashes = map(_digest, map(_hash16, map(str.encode, texts)))
    return sum(map(_to_int, hashes))


def customer_item(customer_id: str) -> str:
    """The hashed text of a customer that exists."""
    return "c" + SEP + customer_id


def link_item(customer_id: str, joined: str) -> str:
    """The hashed text of a customer's links; ``joined``: its sorted segment ids joined by SEP."""
    return "l" + SEP + customer_id + SEP + joined


def row_sums(rows: Iterable[tuple[str, bool, str]]) -> tuple[int, int, int, int]:
    """(customers, links, customers' hash sum, links' hash sum) of membership rows: (customer
    id, exists, its segment ids sorted and joined by SEP, '' for none)."""
    rows = list(rows)
    known = [cid for cid, k, _ in rows if k]
    linked = [(cid, segs) for cid, _, segs in rows if segs]
    return (
        len(known),
        sum(segs.count(SEP) + 1 for _, segs in linked),
        hash_sum(map(customer_item, known)),
        hash_sum(link_item(cid, segs) for cid, segs in linked),
    )
