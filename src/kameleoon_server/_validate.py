"""Checks of admin edits against the site model. Pure; every function returns error messages.

Whatever the admin API stores must give a configuration the SDK parses and that means what the
user meant: references resolve, splits add up, values match their declared types.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Final

from kameleoon_server._conditions import conditions_data_errors, custom_data_index, referenced
from kameleoon_server._integers import MAX_ID, is_int, is_number
from kameleoon_server.model import (
    DEFAULT_ENVIRONMENT,
    CustomDataDefinition,
    Flag,
    Rule,
    Segment,
    SiteModel,
    SiteSettings,
    Variable,
    model_ids,
)

KEY_RE: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
ENVIRONMENT_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HOST_RE: Final = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$")
RULE_TYPES: Final = ("EXPERIMENTATION", "TARGETED_DELIVERY")
VARIABLE_TYPES: Final = ("BOOLEAN", "NUMBER", "STRING", "JSON", "JS", "CSS")


def key_errors(kind: str, key: str) -> list[str]:
    if KEY_RE.match(key):
        return []
    return [f"{kind} key {key!r} must be 1-128 characters among letters, digits, '_', '-', '.'"]


def environment_key_errors(key: str) -> list[str]:
    if ENVIRONMENT_KEY_RE.match(key):
        return []
    return [f"environment key {key!r} must be 1-64 letters, digits, '_' or '-'"]


def environments_errors(keys: list[str]) -> list[str]:
    """The environments of a new site: valid keys, production among them (SDKs read it when they
    name no environment)."""
    errors = [e for key in keys for e in environment_key_errors(key)]
    if DEFAULT_ENVIRONMENT not in keys:
        errors.append(f"environments must include {DEFAULT_ENVIRONMENT!r} (served when an SDK names none)")
    return errors


def variable_errors(variable: Variable) -> list[str]:
    where, value = f"variable {variable.key!r}", variable.value
    if variable.type not in VARIABLE_TYPES:
        return [f"{where}: type must be one of {list(VARIABLE_TYPES)}"]
    ok = {
        "BOOLEAN": isinstance(value, bool),
        "NUMBER": is_number(value),
    }.get(variable.type, isinstance(value, str))
    if not ok:
        return [f"{where}: value {value!r} is not a {variable.type}"]
    if variable.type == "JSON":
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            return [f"{where}: value must be a string holding valid JSON (nested at most a few hundred deep)"]
    return key_errors("variable", variable.key)


def flag_errors(model: SiteModel, flag: Flag) -> list[str]:
    errors = key_errors("flag", flag.key)
    if sum(f.key == flag.key for f in model.flags) > 1:
        errors.append(f"flag key {flag.key!r} is used by another flag")
    keys = [v.key for v in flag.variations]
    if len(set(keys)) != len(keys):
        errors.append("variation keys must be unique")
    for variation in flag.variations:
        errors += key_errors("variation", variation.key)
        names = [v.key for v in variation.variables]
        if len(set(names)) != len(names):
            errors.append(f"variation {variation.key!r}: variable keys must be unique")
        errors += [
            f"variation {variation.key!r}: {e}" for v in variation.variables for e in variable_errors(v)
        ]
    if flag.default_variation_key not in keys:
        errors.append(
            f"default_variation_key {flag.default_variation_key!r} is not one of the variations {keys}"
        )
    for env_key, env in flag.environments.items():
        if env_key not in model.environment_keys():
            errors.append(f"unknown environment {env_key!r}")
        for rule in env.rules:
            errors += [f"{env_key} rule {rule.id}: {e}" for e in rule_errors(model, flag, rule)]
    return errors


def rule_errors(model: SiteModel, flag: Flag, rule: Rule) -> list[str]:
    errors = []
    if rule.type not in RULE_TYPES:
        errors.append(f"type must be one of {list(RULE_TYPES)}")
    if not 0.0 <= rule.exposition <= 1.0:
        errors.append("exposition must be between 0 and 1")
    if not rule.variations:
        errors.append("variations must list at least one variation")
    keys = {v.key for v in flag.variations}
    listed = [e.variation_key for e in rule.variations]
    errors += [
        f"variation {key!r} is listed twice in the split"
        for key in sorted({k for k in listed if listed.count(k) > 1})
    ]
    for entry in rule.variations:
        if entry.variation_key not in keys:
            errors.append(f"variation {entry.variation_key!r} is not a variation of flag {flag.key!r}")
        if not 0.0 <= entry.exposition <= 1.0:
            errors.append(f"variation {entry.variation_key!r}: exposition must be between 0 and 1")
    if sum(e.exposition for e in rule.variations) > 1.0 + 1e-9:
        errors.append("the expositions of the variations add up to more than 1")
    if rule.segment_id is not None and model.segment(rule.segment_id) is None:
        errors.append(f"segment {rule.segment_id} does not exist")
    return errors


def _segment_cycle(model: SiteModel, start: int) -> bool:
    seen, stack = set(), [start]
    while stack:
        segment = model.segment(stack.pop())
        if segment is None:
            continue
        for target in referenced(segment.conditions_data, "SEGMENT", "segmentId"):
            if target == start:
                return True
            if isinstance(target, int) and target not in seen:
                seen.add(target)
                stack.append(target)
    return False


def _ids(values: list[Any]) -> list[int]:
    """The integers among referenced values (the others are reported by the condition checks)."""
    return [v for v in values if is_int(v)]


def segment_errors(model: SiteModel, segment: Segment) -> list[str]:
    errors = conditions_data_errors(segment.conditions_data, strict=True)
    for target in _ids(referenced(segment.conditions_data, "SEGMENT", "segmentId")):
        if model.segment(target) is None:
            errors.append(f"SEGMENT condition: segment {target} does not exist")
    if _segment_cycle(model, segment.id):
        errors.append("SEGMENT conditions must not refer back to this segment")
    flag_ids = {f.id for f in model.flags}
    for flag_id in _ids(referenced(segment.conditions_data, "TARGET_FEATURE_FLAG", "featureFlagId")):
        if flag_id not in flag_ids:
            errors.append(f"TARGET_FEATURE_FLAG condition: flag id {flag_id} does not exist")
    return errors + _goal_and_custom_data_errors(model, segment)


def _goal_and_custom_data_errors(model: SiteModel, segment: Segment) -> list[str]:
    goal_ids = {g.id for g in model.goals}
    errors = [
        f"{kind} condition: goal {goal_id} does not exist"
        for kind in ("CONVERSIONS", "HEAT_SLICE")
        for goal_id in _ids(referenced(segment.conditions_data, kind, "goalId"))
        if goal_id not in goal_ids
    ]
    indexes = {c.index for c in model.custom_data}
    texts = referenced(segment.conditions_data, "CUSTOM_DATUM", "customDataIndex")
    numbers = [custom_data_index(t) for t in texts]
    errors += [
        f"CUSTOM_DATUM condition: custom data index {n} is not defined"
        for n in numbers
        if n is not None and n not in indexes
    ]
    return errors


def custom_data_errors(model: SiteModel, definition: CustomDataDefinition) -> list[str]:
    errors = []
    if not 0 <= definition.index <= MAX_ID:
        errors.append(f"index must be an integer from 0 to {MAX_ID}")
    if sum(c.index == definition.index for c in model.custom_data) > 1:
        errors.append(f"custom data index {definition.index} is defined already")
    if definition.is_mapping_identifier and sum(c.is_mapping_identifier for c in model.custom_data) > 1:
        errors.append("only one custom data definition can be the mapping identifier")
    return errors


def settings_errors(settings: SiteSettings) -> list[str]:
    domain = settings.data_api_domain
    if domain is not None and not HOST_RE.match(domain):
        return ["data_api_domain must be host[:port] (no scheme, no path)"]
    return []


def id_errors(model: SiteModel) -> list[str]:
    """Ids in 1..MAX_ID, unique within their kind (flag, rule, experiment, variation, segment, goal,
    custom data: the SDK and the tracking keep each kind apart), below ``next_id``."""
    errors, seen = [], defaultdict(list)
    for kind, ident, where in model_ids(model):
        if ident is None or not 1 <= ident <= MAX_ID:
            errors.append(f"{where}: {kind} id {ident} must be an integer from 1 to {MAX_ID}")
            continue
        seen[kind, ident].append(where)
        if ident >= model.next_id:
            errors.append(f"{where}: {kind} id {ident} is not below next_id {model.next_id}")
    for (kind, ident), places in seen.items():
        if len(places) > 1:
            errors.append(f"{kind} id {ident} is used more than once: {'; '.join(places)}")
    return errors


def model_errors(model: SiteModel) -> list[str]:
    """What would make the served configuration unparseable or ambiguous (checked before every
    save): conditions the SDK cannot parse, ids out of range or used twice."""
    errors = id_errors(model)
    for segment in model.segments:
        problems = conditions_data_errors(segment.conditions_data, strict=False)
        errors += [f"segment {segment.id}: {e}" for e in problems]
    return errors


def site_errors(model: SiteModel) -> list[str]:
    """Everything the admin API checks, over a whole model (an imported configuration).

    Conditions are checked as the SDK parses them, and their references to segments and goals are
    not: configurations exported by the vendor refer to goals (which they do not carry) and to
    segments that no longer exist, and the SDK accepts them."""
    errors = model_errors(model) + settings_errors(model.settings)
    for flag in model.flags:
        errors += [f"flag {flag.key!r}: {e}" for e in flag_errors(model, flag)]
    for definition in model.custom_data:
        errors += [
            f"custom data index {definition.index}: {e}" for e in custom_data_errors(model, definition)
        ]
    return list(dict.fromkeys(errors))


CONDITION_REFERENCES: Final = {
    "segment": (("SEGMENT", "segmentId"),),
    "flag": (("TARGET_FEATURE_FLAG", "featureFlagId"),),
    "goal": (("CONVERSIONS", "goalId"), ("HEAT_SLICE", "goalId")),
    "custom_data": (("CUSTOM_DATUM", "customDataIndex"),),
}


def _refers_to(segment: Segment, kind: str, ident: Any) -> bool:
    for targeting_type, field in CONDITION_REFERENCES.get(kind, ()):
        values = referenced(segment.conditions_data, targeting_type, field)
        if kind == "custom_data":
            values = [custom_data_index(v) for v in values]
        if ident in values:
            return True
    return False


def usage(model: SiteModel, kind: str, ident: Any) -> list[str]:
    """Where a segment, flag, variation, goal or custom data index is used (to refuse deleting it)."""
    out = []
    for flag in model.flags:
        for env_key, env in flag.environments.items():
            for rule in env.rules:
                if kind == "segment" and rule.segment_id == ident:
                    out.append(f"rule {rule.id} of flag {flag.key!r} ({env_key})")
                uses = kind == "variation" and ident[0] == flag.key
                if uses and any(e.variation_key == ident[1] for e in rule.variations):
                    out.append(f"rule {rule.id} ({env_key})")
    out += [f"segment {s.id}" for s in model.segments if _refers_to(s, kind, ident)]
    return out
