"""What gestures did for the follow-up report: recovery with and without one, and spend per recovered customer.

Built on the cases a follow-up report counted (``Report.outcomes``; kb.followup never imports this
package, recovery builds on follow-up). A customer is *surveyed* when a re-survey of one of those
cases was answered, and *recovered* when one such answer scored 4 or 5 (the report's own measure).
A customer *had a gesture* when an offer still standing (not declined or cancelled, as the budgets
count) was made on one of their surveyed cases. Spend is that of every standing offer on the
report's cases, at its latest corrected amount, per currency; divided by all recovered customers,
it is what a won-back customer cost. Gestures without a currency (percentages, apologies) are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.followup.report import ratio
from kb.recovery import bounds as kb_bounds
from kb.recovery.models import CENT, RecoveryEntry

CHUNK = 500  # case ids per IN (...) list, as the follow-up report reads them


@dataclass
class GestureOutcomes:
    """Recovery of surveyed customers with and without a gesture, and spend per recovered customer."""

    with_gesture: int = 0
    with_recovered: int = 0
    without_gesture: int = 0
    without_recovered: int = 0
    # (currency, offers, amount; amount None for "": counted, not summed), per currency.
    spend: list[tuple[str, int, Decimal | None]] = field(default_factory=list)

    @property
    def recovered(self) -> int:
        """Recovered customers, with a gesture or without."""
        return self.with_recovered + self.without_recovered

    @property
    def with_share(self) -> float | None:
        """Share of surveyed customers with a gesture who recovered."""
        return ratio(self.with_recovered, self.with_gesture)

    @property
    def without_share(self) -> float | None:
        """Share of surveyed customers without a gesture who recovered."""
        return ratio(self.without_recovered, self.without_gesture)

    @property
    def recovered_with_share(self) -> float | None:
        """Share of recovered customers who had a gesture."""
        return ratio(self.with_recovered, self.recovered)

    def per_recovered(self) -> list[tuple[str, Decimal]]:
        """Money spent per recovered customer, per currency (none when nobody recovered)."""
        if not self.recovered:
            return []
        return [(currency, (amount / self.recovered).quantize(CENT))
                for currency, _count, amount in self.spend if amount is not None]


def _chunks(values: Iterable[int]) -> Iterable[list[int]]:
    """``values`` in sorted lists of at most CHUNK."""
    ordered = sorted(set(values))
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i:i + CHUNK]


def _offers(session: so.Session, case_ids: Iterable[int]) -> tuple[set[int], dict[str, list]]:
    """The cases with a standing offer, and (offers, amount) per currency over those offers."""
    amount = kb_bounds._counted_amount()  # the budgets' own rules: what counts, at which amount
    cases: set[int] = set()
    spend: dict[str, list] = {}
    for ids in _chunks(case_ids):
        for case_id, currency, value in session.execute(
                sa.select(RecoveryEntry.case_id, RecoveryEntry.currency, amount)
                .where(kb_bounds._standing_offers(), RecoveryEntry.case_id.in_(ids))):
            cases.add(case_id)
            total = spend.setdefault(currency, [0, Decimal("0")])
            total[0] += 1
            total[1] += Decimal(value or 0)
    return cases, spend


def gesture_outcomes(session: so.Session, outcomes: list[tuple[int, int | None, bool | None]]) -> GestureOutcomes:
    """The gesture measures over a follow-up report's cases (``Report.outcomes``)."""
    gifted, spend = _offers(session, (case_id for case_id, _customer, _recovered in outcomes))
    customers: dict[int, list[bool]] = {}  # customer -> [had a gesture, recovered]
    for case_id, customer_id, recovered in outcomes:
        if customer_id is None or recovered is None:
            continue
        seen = customers.setdefault(customer_id, [False, False])
        seen[0] = seen[0] or case_id in gifted
        seen[1] = seen[1] or recovered
    result = GestureOutcomes(spend=[(currency, count, amount if currency else None)
                                    for currency, (count, amount) in sorted(spend.items())])
    for had, recovered in customers.values():
        if had:
            result.with_gesture += 1
            result.with_recovered += recovered
        else:
            result.without_gesture += 1
            result.without_recovered += recovered
    return result


def csv_rows(found: GestureOutcomes) -> list[tuple[str, str, float | int | Decimal | None, str]]:
    """(measure, category, value, unit) rows for the follow-up report's CSV."""
    rows: list[tuple[str, str, float | int | Decimal | None, str]] = [
        ("recovered_share_with_gesture", "", found.with_share, "share"),
        ("customers_surveyed_with_gesture", "", found.with_gesture, "customers"),
        ("customers_recovered_with_gesture", "", found.with_recovered, "customers"),
        ("recovered_share_without_gesture", "", found.without_share, "share"),
        ("customers_surveyed_without_gesture", "", found.without_gesture, "customers"),
        ("customers_recovered_without_gesture", "", found.without_recovered, "customers")]
    rows += [("gesture_spend", currency, amount if currency else count, currency or "offers")
             for currency, count, amount in found.spend]
    rows += [("gesture_spend_per_recovered_customer", currency, value, currency)
             for currency, value in found.per_recovered()]
    return rows
