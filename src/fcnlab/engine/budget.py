"""A training run's time budget: ``train.time_budget`` (e.g. ``60m``) instead of a step count.

The budget covers the training loop's wall time, validations included, across resumes. The
LR schedule runs over the share of the budget spent (:meth:`Budget.fraction`); the run stops
once the time left would no longer fit the final validation (:meth:`Budget.exhausted`: the
duration of the last validation plus 20% and a second of margin), so the final evaluation
ends inside the budget. ``train.steps`` stays an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from fcnlab.config import parse_duration

#: The final validation is reserved this factor of the last validation's duration.
RESERVE_FACTOR = 1.2
RESERVE_MARGIN_S = 1.0


@dataclass
class Budget:
    seconds: float | None  # None: no budget, the run is bounded by train.steps
    reserve_s: float = 0.0  # the last validation's duration

    @classmethod
    def from_config(cls, text: str | None) -> Budget:
        return cls(parse_duration(text) if text else None)

    def fraction(self, elapsed_s: float) -> float | None:
        """The share of the budget spent (0..1), or None without a budget."""
        if self.seconds is None:
            return None
        return min(1.0, max(0.0, elapsed_s / self.seconds))

    def exhausted(self, elapsed_s: float) -> bool:
        """True once the final validation would no longer end inside the budget."""
        if self.seconds is None:
            return False
        reserve = self.reserve_s * RESERVE_FACTOR + RESERVE_MARGIN_S
        return elapsed_s + reserve >= self.seconds

    def describe(self) -> str:
        if self.seconds is None:
            return ""
        minutes = self.seconds / 60
        return f"time budget {minutes:g} min" if minutes >= 1 else f"time budget {self.seconds:g} s"
