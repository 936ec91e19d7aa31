"""Conditions on what the visitor did: pages, conversions, visits, code and KCS heat."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kameleoon._engine.conditions.base import Compiled, Lookups, never
from kameleoon._engine.matching import (
    compare,
    string_matcher,
)
from kameleoon._engine.model import Check
from kameleoon._engine.tree import Inline
from kameleoon._visitors.record import Visitor

__all__ = [
    "conversions",
    "first_visit",
    "heat_slice",
    "last_visit",
    "new_visitors",
    "page_title",
    "page_url",
    "page_views",
    "previous_page",
    "same_day_visits",
    "visitor_code",
    "visits",
]


# -- pages, conversions, visitor code ---------------------------------------------------------
def page_url(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    operator, expected = cond.get("matchType"), cond.get("url")
    if operator == "CONTAINS" and isinstance(expected, str):
        contains = _page_url_contains(expected)
        # inline for a visitor with exactly one page (the usual case), the loop otherwise (it
        # does not read the experiment id: passing None spares the function a local ``e``)
        one_page = "len($p) == 3 and ($u := $p[0].url).__class__ is str"
        inline = f"($p := v.pages) is not None and ($K in $u if {one_page} else $F(v, c, None))"
        return contains, Inline(inline, cost=4, on_record=True, K=expected, F=contains)
    matches = string_matcher(operator, expected)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if pages:
            for position in range(0, len(pages), 3):
                if matches(pages[position].url):
                    return True
        return False

    return check


def _page_url_contains(expected: str) -> Check:
    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if pages:
            for position in range(0, len(pages), 3):
                url = pages[position].url
                if url.__class__ is str and expected in url:
                    return True
        return False

    return check


def page_title(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    matches = string_matcher(cond.get("matchType"), cond.get("title"))

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        return pages is not None and any(
            page.title is not None and matches(page.title) for page in pages[::3]
        )

    return check


def previous_page(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    matches = string_matcher(cond.get("matchType"), cond.get("url"))

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        pages = visitor.pages if visitor is not None else None
        if not pages:
            return False
        latest = previous = None
        for position in range(0, len(pages), 3):
            if latest is None or pages[position + 2] > pages[latest + 2]:
                previous, latest = latest, position
            elif previous is None or pages[position + 2] > pages[previous + 2]:
                previous = position
        return previous is not None and matches(pages[previous].url)

    return check


def page_views(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("pageCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if visitor is None or count is None:
            return False
        pages = visitor.pages
        total = sum(pages[1::3]) if pages else 0
        return compare(operator, total, count)

    return check


def conversions(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    goal_id = cond.get("goalId", -1)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if visitor is None or not visitor.conversions:
            return False
        if goal_id == -1:
            return True
        return any(conversion.goal_id == goal_id for conversion in visitor.conversions)

    if goal_id == -1:
        return check, Inline("v.conversions != ()", cost=1, on_record=True)
    return check


def visitor_code(cond: Mapping[str, Any], lookups: Lookups) -> Compiled:
    expected, operator = cond.get("visitorCode"), cond.get("matchType")
    if expected is None:
        return never
    matches = string_matcher(operator, expected)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return matches(code)

    if operator == "EXACT":
        return check, Inline("c == $K", cost=1, K=expected)
    return check, Inline("$M(c)", cost=4, M=matches)


# -- visit history ----------------------------------------------------------------------------
def _visits_of(visitor: Visitor | None) -> tuple[Any, ...]:
    visits = visitor.visits if visitor is not None else None
    return visits or ()


def visits(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("visitCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        return count is not None and compare(operator, len(_visits_of(visitor)) + 1, count)

    return check


def _start_of_today_ms() -> float:
    now = time.localtime()
    midnight = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))
    return midnight * 1000


def same_day_visits(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    operator, count = cond.get("matchType"), cond.get("visitCount")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        if count is None:
            return False
        today, same_day = _start_of_today_ms(), 0
        for started in _visits_of(visitor):
            if started < today:
                break
            same_day += 1
        return compare(operator, same_day + 1, count)

    return check


def _elapsed_since_visit(cond: Mapping[str, Any], lookups: Lookups, first: bool) -> Check:
    operator, millis = cond.get("matchType"), cond.get("countInMillis")

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        visits = _visits_of(visitor)
        if not visits or millis is None:
            return False
        try:
            elapsed = time.time() * 1000 - visits[-1 if first else 0]
        except TypeError:
            return False
        return compare(operator, elapsed, millis)

    return check


def first_visit(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    return _elapsed_since_visit(cond, lookups, first=True)


def last_visit(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    return _elapsed_since_visit(cond, lookups, first=False)


def new_visitors(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    kind = cond.get("visitorType")
    kind = kind.upper() if isinstance(kind, str) else None
    if kind == "NEW":
        return lambda visitor, code, experiment_id: not _visits_of(visitor)
    if kind == "RETURNING":
        return lambda visitor, code, experiment_id: bool(_visits_of(visitor))
    return never


def heat_slice(cond: Mapping[str, Any], lookups: Lookups) -> Check:
    def number(key: str, default: float) -> Any:
        value = cond.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    goal, moment = number("goalId", -1), number("keyMomentId", -1)
    lower, upper = number("lowerBound", 101), number("upperBound", -1)

    def check(visitor: Visitor | None, code: str, experiment_id: Any) -> bool:
        kcs = visitor.kcs if visitor is not None else None
        scores = kcs.get(moment) if kcs else None
        score = scores.get(goal) if isinstance(scores, dict) else None
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            return False
        return bool(lower <= score <= upper)

    return check
