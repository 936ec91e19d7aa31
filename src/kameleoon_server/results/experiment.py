"""An experiment as the site's configuration describes it: flag, rule, variations, split, goals."""

from __future__ import annotations

from dataclasses import dataclass, field

from kameleoon_server.model import Flag, Rule, SiteModel

__all__ = ["ExperimentInfo", "VariationInfo", "find_experiment"]


@dataclass(frozen=True, slots=True)
class VariationInfo:
    id: int
    key: str | None = None
    share: float | None = None
    """Configured share of the rule's traffic (the split's ``exposition``), None if unknown."""


@dataclass(frozen=True, slots=True)
class ExperimentInfo:
    """Variations control first; the rest in the order of the rule's split."""

    id: int
    flag_key: str | None = None
    rule_id: int | None = None
    environment: str | None = None
    name: str = ""
    variations: tuple[VariationInfo, ...] = ()
    goals: dict[int, str] = field(default_factory=dict)
    """Goal id -> name, from the site's goals."""

    def with_control(self, control: str) -> ExperimentInfo:
        """The same experiment with ``control`` (a variation key or id) moved first.

        Raises ``ValueError`` when no variation has that key or id."""
        found = [v for v in self.variations if control in (v.key, str(v.id))]
        if not found:
            raise ValueError(f"no variation {control!r} in experiment {self.id}")
        rest = [v for v in self.variations if v is not found[0]]
        return ExperimentInfo(
            self.id, self.flag_key, self.rule_id, self.environment, self.name, (found[0], *rest), self.goals
        )


def _rule(model: SiteModel, experiment_id: int) -> tuple[Flag, str, Rule] | None:
    for flag in model.flags:
        for env, settings in flag.environments.items():
            for rule in settings.rules:
                if rule.experiment_id == experiment_id:
                    return flag, env, rule
    return None


def find_experiment(model: SiteModel, experiment_id: int) -> ExperimentInfo:
    """The experiment with this id (a rule's ``experiment_id``); without such a rule, an
    experiment with no known variations (they are then taken from the data)."""
    goals = {g.id: g.name for g in model.goals}
    found = _rule(model, experiment_id)
    if found is None:
        return ExperimentInfo(id=experiment_id, goals=goals)
    flag, env, rule = found
    split = [
        VariationInfo(e.variation_id, e.variation_key, e.exposition)
        for e in rule.variations
        if e.variation_id
    ]
    control = [v for v in split if v.key == flag.default_variation_key][:1] or split[:1]
    ordered = control + [v for v in split if v not in control]
    return ExperimentInfo(
        id=experiment_id,
        flag_key=flag.key,
        rule_id=rule.id,
        environment=env,
        name=rule.name or flag.name or flag.key,
        variations=tuple(ordered),
        goals=goals,
    )
