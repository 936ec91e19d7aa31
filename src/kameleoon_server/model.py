"""The configuration model of one site, stored as one versioned JSON document.

The served configuration (evaluation.md §1) is derived from it per environment by
:mod:`kameleoon_server._datafile`. Admin API bodies are decoded into these same types, so field
names here are the admin API's field names.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from kameleoon_server._integers import MAX_ID

VariableType = Literal["BOOLEAN", "NUMBER", "STRING", "JSON", "JS", "CSS"]
RuleType = Literal["EXPERIMENTATION", "TARGETED_DELIVERY"]
DEFAULT_ENVIRONMENTS = ("production", "staging", "development")
DEFAULT_ENVIRONMENT = "production"  # what SDKs read when they name no environment


class _Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Variable(_Base, kw_only=True):
    key: str
    type: VariableType | str
    value: Any = None


class Variation(_Base, kw_only=True):
    key: str
    name: str = ""
    variables: list[Variable] = []


class SplitEntry(_Base, kw_only=True):
    variation_key: str
    exposition: float
    variation_id: int | None = None  # allocated by the server when a rule is created without it


class Rule(_Base, kw_only=True):
    id: int = 0  # allocated when 0
    name: str = ""
    type: RuleType | str = "EXPERIMENTATION"
    exposition: float = 1.0
    experiment_id: int = 0  # allocated when 0
    respool_time: int | float | None = None
    segment_id: int | None = None
    variations: list[SplitEntry] = []


class FlagEnvironment(_Base, kw_only=True):
    enabled: bool = False
    rules: list[Rule] = []


class Flag(_Base, kw_only=True):
    id: int = 0
    key: str
    name: str = ""
    default_variation_key: str = "off"
    variations: list[Variation] = []
    environments: dict[str, FlagEnvironment] = {}


class Segment(_Base, kw_only=True):
    id: int = 0
    name: str = ""
    conditions_data: dict[str, Any] | None = None


class Goal(_Base, kw_only=True):
    id: int = 0
    name: str
    type: str = "CUSTOM"


class CustomDataDefinition(_Base, kw_only=True):
    id: int = 0
    index: int
    name: str = ""
    scope: Literal["VISIT", "VISITOR"] = "VISIT"
    local_only: bool = False
    is_mapping_identifier: bool = False


class Environment(_Base, kw_only=True):
    key: str
    name: str = ""


class SiteSettings(_Base, kw_only=True):
    # Off by default, as on the vendor's platform: the 3.4.0 SDK never reconnects a stream that
    # failed twice and stops polling while it streams, so a restart of a lone server instance
    # would leave its streaming clients without updates until they restart (docs/server.md).
    real_time_update: bool = False
    consent_type: Literal["REQUIRED", "NOT_REQUIRED"] = "NOT_REQUIRED"
    data_api_domain: str | None = None
    data_api_auth: Literal["required", "optional"] = "required"


class SiteModel(_Base, kw_only=True):
    name: str = ""
    settings: SiteSettings = msgspec.field(default_factory=SiteSettings)
    environments: list[Environment] = msgspec.field(
        default_factory=lambda: [Environment(key=k, name=k.title()) for k in DEFAULT_ENVIRONMENTS]
    )
    custom_data: list[CustomDataDefinition] = []
    goals: list[Goal] = []
    segments: list[Segment] = []
    flags: list[Flag] = []
    next_id: int = 1000

    def allocate_id(self) -> int:
        """A fresh id, unique within the site (flags, rules, experiments, variations, ...): the
        next one up; once an id of 2⁶³−1 was given, the smallest ids the site does not use."""
        if self.next_id > MAX_ID:
            self.next_id = _free_run_start(self)
        value = self.next_id
        self.next_id += 1
        return value

    def move_next_id_past_ids(self) -> None:
        """Keeps ``next_id`` above every id of the model, explicit ones included, so that an id
        given by a client is never handed out again. Call it before allocating."""
        self.next_id = max(self.next_id, max_id(self) + 1)

    def flag(self, key: str) -> Flag | None:
        return next((f for f in self.flags if f.key == key), None)

    def segment(self, segment_id: int) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def environment_keys(self) -> list[str]:
        return [e.key for e in self.environments]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SiteModel)


def encode_model(model: SiteModel) -> bytes:
    return _encoder.encode(model)


def decode_model(data: bytes) -> SiteModel:
    return _decoder.decode(data)


def model_ids(model: SiteModel) -> list[tuple[str, int | None, str]]:
    """Every id of the model as (kind, id, where); a split entry without id gives None."""
    out: list[tuple[str, int | None, str]] = [("flag", f.id, f"flag {f.key!r}") for f in model.flags]
    out += [("segment", s.id, f"segment {s.id}") for s in model.segments]
    out += [("goal", g.id, f"goal {g.name!r}") for g in model.goals]
    out += [("custom data", c.id, f"custom data index {c.index}") for c in model.custom_data]
    for flag in model.flags:
        for env_key, env in flag.environments.items():
            for rule in env.rules:
                where = f"rule {rule.id} of flag {flag.key!r} ({env_key})"
                out += [("rule", rule.id, where), ("experiment", rule.experiment_id, where)]
                out += [
                    ("variation", e.variation_id, f"{where}, split entry {e.variation_key!r}")
                    for e in rule.variations
                ]
    return out


def max_id(model: SiteModel) -> int:
    """The largest valid id (1 to ``MAX_ID``) used anywhere in the model, 0 when there is none
    (out-of-range ids are refused by validation and must not push ``next_id`` out of range)."""
    return max(_valid_ids(model), default=0)


def _valid_ids(model: SiteModel) -> set[int]:
    """The ids from 1 to ``MAX_ID`` used anywhere in the model."""
    return {i for _, i, _ in model_ids(model) if i is not None and 0 < i <= MAX_ID}


def _free_run_start(model: SiteModel) -> int:
    """Once ids reach 2⁶³−1: the start of the highest run of ids the model does not use (every id
    from there up to the next used one is free, so allocation goes on counting up, unchecked)."""
    used = _valid_ids(model)
    top = MAX_ID
    while top in used:
        top -= 1
    return 1 + max((i for i in used if i < top), default=0)
