"""The remote fingerprint a plan records: an order-independent digest, a sum of 128-bit per-item
hashes, so no sorting is needed, and a digest can be updated item by item (subtract what left,
add what came: the state store and the targeted read keep it that way)."""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Iterable

from ..model import State

__all__ = [
    "MASK",
    "SEP",
    "customer_item",
    "fingerprint",
    "fingerprint_sum",
    "format_fingerprint",
    "hash_sum",
    "link_item",
    "row_sums",
]

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


def fingerprint_sum(state: State) -> int:
    """The unmasked sum behind :func:`fingerprint` (a sum: it can be updated item by item)."""
    acc = hash_sum(SEP.join(("s", s.id, s.name, s.description)) for s in state.segments.values())
    acc += hash_sum(SEP.join(("a", k, *sorted(v))) for k, v in state.access.items())
    acc += hash_sum(map(customer_item, state.customers))
    links = state.links
    distinct = {id(segs): segs for segs in links.values()}
    tails = {k: SEP + SEP.join(sorted(segs)) for k, segs in distinct.items()}
    keys = map(("l" + SEP).__add__, links.keys())
    acc += hash_sum(map(str.__add__, keys, map(tails.__getitem__, map(id, links.values()))))
    return acc


def fingerprint(state: State) -> str:
    """An order-independent digest of a state (a sum of per-item hashes: no sorting needed).

    Each item is hashed as its parts joined by ``\x1f`` (sorted ids for sets). Customers that
    share a segment set share its sorted, joined text, built once per distinct set.
    """
    return format_fingerprint(fingerprint_sum(state))


def format_fingerprint(total: int) -> str:
    return f"{total & MASK:032x}"
