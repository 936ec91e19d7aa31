"""Value types returned by, or passed to, the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RemoteVisitorDataFilter", "Variable", "Variation"]


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable of a variation: its key, its configured type string and its typed value.

    ``type`` is the configuration's type (``"BOOLEAN"``, ``"NUMBER"``, ``"STRING"``, ``"JSON"``);
    ``value`` is already decoded (a JSON variable's string is parsed).
    """

    key: str
    type: str
    value: Any


@dataclass(slots=True, init=False)
class Variation:
    """The variation a visitor gets for a feature flag.

    ``id_`` is the variation id and ``experiment_id`` the experiment of the rule that assigned
    it; both are ``None`` when the visitor got the flag's default variation. Each call returns
    new ``Variation`` objects (the :class:`Variable` values inside are immutable). The
    constructor takes the id as ``id`` (the reference's name) or ``id_`` (the attribute's).
    """

    key: str
    id_: int | None
    experiment_id: int | None
    variables: dict[str, Variable]

    def __init__(
        self,
        key: str,
        id: int | None = None,
        experiment_id: int | None = None,
        variables: dict[str, Variable] | None = None,
        *,
        id_: int | None = None,
    ) -> None:
        self.key = key
        self.id_ = id if id_ is None else id_
        self.experiment_id = experiment_id
        self.variables = {} if variables is None else variables


@dataclass(frozen=True, slots=True)
class RemoteVisitorDataFilter:
    """Selects what :meth:`KameleoonClient.get_remote_visitor_data` asks the Data API for.

    ``previous_visit_amount`` is the number of previous visits to include (1 to 25); every other
    field switches one kind of data on or off.
    """

    previous_visit_amount: int = 1
    current_visit: bool = True
    custom_data: bool = True
    page_views: bool = False
    geolocation: bool = False
    device: bool = False
    browser: bool = False
    operating_system: bool = False
    conversions: bool = False
    experiments: bool = False
    kcs: bool = False
