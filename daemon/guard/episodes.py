"""Once per episode: a rule's verdict is raised when its condition starts holding for a
subject, and again only after the condition cleared (pure, bounded)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable


class Episodes:
    """The subjects of one rule whose condition holds now, least recently seen first.

    >>> e = Episodes(max_subjects=2)
    >>> e.step("a", True, 1.0), e.step("a", True, 2.0), e.step("a", False, 3.0)
    (True, False, False)
    >>> e.step("a", True, 4.0)  # re-armed once the condition cleared
    True
    """

    def __init__(self, max_subjects: int) -> None:
        self.max_subjects = max_subjects
        self.active: OrderedDict[Hashable, float] = OrderedDict()

    def step(self, subject: Hashable, holds: bool, now: float) -> bool:
        """Record whether the condition holds for ``subject``; True when an episode starts."""
        if not holds:
            self.active.pop(subject, None)
            return False
        if subject in self.active:
            self.active.move_to_end(subject)
            return False
        self.active[subject] = now
        while len(self.active) > self.max_subjects:
            self.active.popitem(last=False)
        return True

    def keep_only(self, present: Iterable[Hashable]) -> None:
        """Close the episodes of subjects that no longer exist (a tree gone)."""
        keep = set(present)
        for subject in [s for s in self.active if s not in keep]:
            del self.active[subject]

    def __len__(self) -> int:
        return len(self.active)
