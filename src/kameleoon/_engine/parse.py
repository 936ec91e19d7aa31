"""Parses a configuration document (JSON already decoded) into a :class:`Configuration`.

The document is validated as a whole: any structural error raises :class:`ConfigError` and
nothing of the document is used, so the caller keeps its previous configuration. Lenient
defaults follow the reference SDK (evaluation spec §1): absent keys take their default,
unknown keys are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kameleoon._engine.conditions import ConfigError, Lookups, compile_condition
from kameleoon._engine.hashing import container_text, limit_for
from kameleoon._engine.model import (
    EXPERIMENTATION,
    TARGETED_DELIVERY,
    UNKNOWN_RULE,
    Configuration,
    CustomDataDef,
    Flag,
    Rule,
    Segment,
    VariationEntry,
)
from kameleoon._engine.passes import compile_flag, compile_pass
from kameleoon._engine.tree import Tree, build_tree, lazy_memo_tree, lazy_tree
from kameleoon._engine.variables import VariationDef, make_variable, make_variation

__all__ = ["ConfigError", "parse_configuration", "parse_configuration_text"]

_RULE_TYPES = {EXPERIMENTATION: EXPERIMENTATION, TARGETED_DELIVERY: TARGETED_DELIVERY}


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be an object")
    return value


def _list(parent: Mapping[str, Any], key: str, what: str) -> list[Any]:
    """``parent[key]`` as a list: absent -> empty; explicit null or a non-list -> error."""
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{what}.{key} must be an array")
    return value


def _optional_list(parent: Mapping[str, Any], key: str) -> list[Any]:
    """Absent or null -> empty."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be an array")
    return value


def parse_configuration_text(text: str | bytes) -> Configuration:
    """Decodes and parses a configuration document; raises :class:`ConfigError`."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"the configuration is not valid JSON: {e}") from e
    return parse_configuration(document)


def parse_configuration(document: Any) -> Configuration:
    """Compiles a decoded configuration document; raises :class:`ConfigError`."""
    try:
        return _parse(_object(document, "the configuration document"))
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as e:
        raise ConfigError(f"the configuration is malformed: {type(e).__name__}: {e}") from e


def _parse(document: Mapping[str, Any]) -> Configuration:
    settings = document.get("configuration")
    settings = {} if settings is None else _object(settings, "configuration")
    custom_data, mapping_index = _parse_custom_data(_optional_list(document, "customData"))
    lookups = Lookups()
    flags: dict[Any, Flag] = {}
    for raw_flag in _optional_list(document, "featureFlags"):
        flag = _parse_flag(_object(raw_flag, "a feature flag"), lookups)
        flags[flag.key] = flag
    data_api_domain = settings.get("dataApiDomain")
    enabled = tuple(flag for flag in flags.values() if flag.environment_enabled)
    config = Configuration(
        real_time_update=bool(settings.get("realTimeUpdate", False)),
        consent_required=settings.get("consentType") == "REQUIRED",
        data_api_domain=data_api_domain if isinstance(data_api_domain, str) else None,
        custom_data=custom_data,
        mapping_index=mapping_index,
        local_only=frozenset(i for i, d in custom_data.items() if d.local_only),
        fact_count=lookups.fact_count,
        enabled_flags=enabled,
        enabled_by_key={flag.key: flag for flag in enabled},
        decide_all=compile_pass(enabled, lookups.fact_count),
        flags=flags,
        **_indexes(flags.values()),
        raw=document,
    )
    lookups.fill(config)
    return config


def _parse_custom_data(entries: list[Any]) -> tuple[dict[int, CustomDataDef], int | None]:
    definitions: dict[int, CustomDataDef] = {}
    mapping_index = None
    for raw in entries:
        entry = _object(raw, "a customData entry")
        if entry.get("index") is None:
            continue
        try:
            index = int(entry["index"])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"customData index {entry['index']!r} is not an integer") from e
        definition = CustomDataDef(
            index=index,
            local_only=bool(entry.get("localOnly", False)),
            visitor_scope=entry.get("scope") == "VISITOR",
            is_mapping_identifier=bool(entry.get("isMappingIdentifier", False)),
        )
        definitions[index] = definition
        if definition.is_mapping_identifier:
            mapping_index = index
    return definitions, mapping_index


def _indexes(flags: Any) -> dict[str, Any]:
    flags_by_id: dict[Any, Flag] = {}
    entries: dict[Any, VariationEntry] = {}
    rules_by_segment: dict[Any, Rule] = {}
    has_td = False
    for flag in flags:
        flags_by_id[flag.id] = flag
        for rule in flag.rules:
            for entry in rule.entries:
                entries[entry.variation_id] = entry
            rules_by_segment[rule.segment.id if rule.segment is not None else -1] = rule
            has_td = has_td or (flag.environment_enabled and rule.type == TARGETED_DELIVERY)
    return {
        "flags_by_id": flags_by_id,
        "entries_by_variation_id": entries,
        "rules_by_segment_id": rules_by_segment,
        "has_targeted_delivery_rule": has_td,
    }


def _parse_flag(raw: Mapping[str, Any], lookups: Lookups) -> Flag:
    variations = tuple(_parse_variation(_object(v, "a variation")) for v in _list(raw, "variations", "flag"))
    by_key: dict[Any, VariationDef] = {}
    for variation in variations:
        by_key.setdefault(variation.key, variation)  # the first variation with a key wins
    rules = tuple(_parse_rule(_object(r, "a rule"), lookups) for r in _list(raw, "rules", "flag"))
    return Flag(
        id=raw.get("id", 0),
        key=raw.get("featureKey", ""),
        default_variation_key=raw.get("defaultVariationKey", ""),
        environment_enabled=bool(raw.get("environmentEnabled", False)),
        variations=variations,
        rules=rules,
        variations_by_key=by_key,
        decide=compile_flag(rules),
    )


def _parse_variation(raw: Mapping[str, Any]) -> VariationDef:
    variables = tuple(
        make_variable(var.get("key", ""), var.get("type", ""), var.get("value", False))
        for var in (_object(v, "a variable") for v in _list(raw, "variables", "variation"))
    )
    return make_variation(raw.get("key", ""), variables)


def _parse_rule(raw: Mapping[str, Any], lookups: Lookups) -> Rule:
    if "id" not in raw:
        raise ConfigError("a rule has no id")
    rule_id, respool = raw["id"], raw.get("respoolTime")
    experiment_id = raw.get("experimentId", 0)
    total = 0.0
    entries = []
    for item in _list(raw, "variationByExposition", "rule"):
        entry = _object(item, "a variationByExposition entry")
        exposition = entry.get("exposition", 0.0)
        total = total + exposition
        entries.append(
            VariationEntry(
                variation_key=entry.get("variationKey", ""),
                variation_id=entry.get("variationId"),
                exposition=exposition,
                cumulative=total,
                limit=limit_for(total),
            )
        )
    exposition = raw.get("exposition", 0.0)
    if not isinstance(exposition, (int, float)):
        raise ConfigError(f"rule {rule_id!r} has a non-numeric exposition")
    return Rule(
        id=rule_id,
        type=_RULE_TYPES.get(raw.get("type", ""), UNKNOWN_RULE),
        exposition=exposition,
        experiment_id=experiment_id,
        respool_time=respool,
        entries=tuple(entries),
        segment=_parse_segment(raw.get("segment"), lookups),
        rule_suffix=container_text(rule_id, respool).encode("utf-8", "surrogatepass"),
        experiment_suffix=container_text(experiment_id, respool).encode("utf-8", "surrogatepass"),
        exposure_limit=limit_for(exposition),
    )


def _parse_segment(raw: Any, lookups: Lookups) -> Segment | None:
    if raw is None or raw == {}:
        return None
    segment = _object(raw, "a segment")
    if "id" not in segment or "conditionsData" not in segment:
        raise ConfigError("a segment needs an id and conditionsData")
    conditions_data = segment["conditionsData"]
    if conditions_data is None:
        return Segment(id=segment["id"])
    tree = _parse_conditions_data(_object(conditions_data, "conditionsData"), lookups)
    if tree is None:
        return Segment(id=segment["id"])
    return Segment(id=segment["id"], check=lazy_tree(tree), memo_check=lazy_memo_tree(tree), tree=tree)


def _parse_conditions_data(data: Mapping[str, Any], lookups: Lookups) -> Tree:
    groups = _items(data, "firstLevel", "conditionsData")
    operators = _operators(data, "firstLevelOrOperators", len(groups), "conditionsData")
    group_checks = [_parse_group(_object(group, "a condition group"), lookups) for group in groups]
    return build_tree(group_checks, operators, first_level=True)


def _items(parent: Mapping[str, Any], key: str, what: str) -> list[Any]:
    """A required list: absent, or null (which the reference cannot iterate), is a config error."""
    if key not in parent:
        raise ConfigError(f"{what} has no {key}")
    return _list(parent, key, what)


def _operators(parent: Mapping[str, Any], key: str, items: int, what: str) -> list[Any]:
    """The operators between ``items`` items: read (and then required) only when there are two
    items or more, as the reference does."""
    return _items(parent, key, what) if items >= 2 else []


def _parse_group(group: Mapping[str, Any], lookups: Lookups) -> Tree:
    conditions = _items(group, "conditions", "a condition group")
    operators = _operators(group, "orOperators", len(conditions), "a condition group")
    checks: list[Tree] = [compile_condition(cond, lookups) for cond in conditions]
    try:
        return build_tree(checks, operators, first_level=False)
    except ValueError as e:
        raise ConfigError(str(e)) from e
