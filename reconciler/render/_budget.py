"""Spending a character budget on blocks of text by priority, then showing them in their own
order: what matters most (the headline, the verdict, the per-segment table) is placed first,
what is left is spent on the rest, the record lists last.

A block is kept whole when it fits. The first that does not is cut — it keeps the lines that
fit and says how many more there are — or, when it may not be cut, left out; every block ranked
after it is left out. What was left out is counted per unit ("change lines", "warnings") for the
footer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Block", "Spent", "spend"]

#: placed whatever the budget (the headline, the verdict, a target's heading)
ALWAYS = -1


@dataclass(frozen=True, slots=True)
class Block:
    #: lower is placed first; :data:`ALWAYS` is placed even over the budget
    priority: int
    #: where it is shown, relative to the other blocks
    order: tuple[int, ...]
    head: str
    lines: Sequence[str] = ()
    tail: str = ""
    #: what the block (or, when it may be cut, each of its lines) is, named when left out
    unit: str = ""
    #: it may be cut line by line (else it is whole or left out)
    cut: bool = False

    def fits(self, budget: int) -> bool:
        """Whether it fits whole in ``budget`` characters (its lines are read only as far as
        that takes: a list of a million lines may be made as it is read)."""
        budget -= len(self.head) + len(self.tail)
        for line in self.lines:
            budget -= len(line)
            if budget < 0:
                return False
        return budget >= 0


@dataclass(slots=True)
class Spent:
    """The text of the blocks placed, in their order, and what was left out per unit."""

    text: str
    hidden: dict[str, int] = field(default_factory=dict)


def _more(n: int) -> str:
    return f"… {n:,} more\n"


def _cut(block: Block, budget: int) -> tuple[str, int] | None:
    """The block shortened to ``budget`` characters and the lines left out, or None."""
    room = budget - len(block.head) - len(block.tail) - len(_more(len(block.lines)))
    if room < 0:
        return None
    kept: list[str] = []
    for line in block.lines:
        if len(line) > room:
            break
        kept.append(line)
        room -= len(line)
    left = len(block.lines) - len(kept)
    if not kept:
        return None
    return block.head + "".join(kept) + _more(left) + block.tail, left


def spend(blocks: Sequence[Block], budget: int) -> Spent:
    """Place ``blocks`` by priority (then order) within ``budget`` characters; the text is in
    their order."""
    placed: dict[int, str] = {}
    hidden: dict[str, int] = {}
    ranked = sorted(range(len(blocks)), key=lambda i: (blocks[i].priority, blocks[i].order))
    reached = False
    for i in ranked:
        block = blocks[i]
        if block.priority == ALWAYS or (not reached and block.fits(budget)):
            placed[i] = block.head + "".join(block.lines) + block.tail
            budget -= len(placed[i])
            continue
        # the first block that does not fit whole is cut (or left out), and so is every block
        # ranked after it: a smaller block further down never jumps the queue
        shortened = None if reached or not block.cut else _cut(block, budget)
        reached = True
        if shortened is not None:
            placed[i], left = shortened
            budget -= len(placed[i])
            hidden[block.unit] = hidden.get(block.unit, 0) + left
        elif block.unit:
            hidden[block.unit] = hidden.get(block.unit, 0) + (len(block.lines) if block.cut else 1)
    shown = sorted(placed, key=lambda i: blocks[i].order)
    return Spent("".join(placed[i] for i in shown), hidden)
