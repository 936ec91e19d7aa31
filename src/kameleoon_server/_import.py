"""Turns a configuration document (evaluation.md §1, or the v3 form) into a site model. Pure.

Only what the SDK would accept is accepted (§1.10); everything the SDK reads is kept, so the
configuration served afterwards makes the same decisions as the imported one.
"""

from __future__ import annotations

from typing import Any

from kameleoon_server._conditions import conditions_data_errors
from kameleoon_server.model import (
    CustomDataDefinition,
    Flag,
    FlagEnvironment,
    Rule,
    Segment,
    SiteModel,
    SiteSettings,
    SplitEntry,
    Variable,
    Variation,
    max_id,
)


class DatafileError(ValueError):
    """The document would be rejected by the SDK; ``errors`` lists why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _list(obj: dict[str, Any], key: str, where: str, errors: list[str]) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        errors.append(f"{where}.{key} must be a list")
        return []
    return value


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _settings(doc: dict[str, Any], keep_data_api_domain: bool) -> SiteSettings:
    conf = doc.get("configuration") or {}
    domain = conf.get("dataApiDomain") if keep_data_api_domain else None
    return SiteSettings(
        real_time_update=bool(conf.get("realTimeUpdate")),
        consent_type="REQUIRED" if conf.get("consentType") == "REQUIRED" else "NOT_REQUIRED",
        data_api_domain=domain if isinstance(domain, str) else None,
    )


def _custom_data(doc: dict[str, Any], errors: list[str]) -> list[CustomDataDefinition]:
    out = []
    for i, entry in enumerate(doc.get("customData") or []):
        if not isinstance(entry, dict) or entry.get("index") is None:
            continue
        try:
            index = int(entry["index"])
        except (TypeError, ValueError):
            errors.append(f"customData[{i}].index must be an integer")
            continue
        out.append(
            CustomDataDefinition(
                id=_int(entry.get("id"), 0),
                index=index,
                name=str(entry.get("name") or ""),
                scope="VISITOR" if entry.get("scope") == "VISITOR" else "VISIT",
                local_only=bool(entry.get("localOnly")),
                is_mapping_identifier=bool(entry.get("isMappingIdentifier")),
            )
        )
    return out


def _segment(raw: Any, where: str, segments: dict[int, Segment], errors: list[str]) -> int | None:
    if not raw:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int) or "conditionsData" not in raw:
        errors.append(f"{where}.segment needs an integer id and a conditionsData key")
        return None
    errors += [f"{where}.segment: {e}" for e in conditions_data_errors(raw["conditionsData"], strict=False)]
    segment = Segment(id=raw["id"], name=str(raw.get("name") or ""), conditions_data=raw["conditionsData"])
    known = segments.setdefault(segment.id, segment)
    if known.conditions_data != segment.conditions_data:
        errors.append(f"{where}.segment: segment {segment.id} is defined twice with different conditions")
    return segment.id


def _rule(raw: Any, where: str, segments: dict[int, Segment], errors: list[str]) -> Rule | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        errors.append(f"{where} needs an integer id")
        return None
    split = []
    for j, e in enumerate(_list(raw, "variationByExposition", where, errors)):
        if not isinstance(e, dict):
            errors.append(f"{where}.variationByExposition[{j}] must be an object")
            continue
        variation_id = e.get("variationId")
        split.append(
            SplitEntry(
                variation_key=str(e.get("variationKey") or ""),
                variation_id=variation_id if isinstance(variation_id, int) else None,
                exposition=_number(e.get("exposition"), 0.0),
            )
        )
    respool = raw.get("respoolTime")
    segment_id = raw.get("segmentId") if "segmentId" in raw and "segment" not in raw else None
    if segment_id is None:
        segment_id = _segment(raw.get("segment"), where, segments, errors)
    return Rule(
        id=raw["id"],
        type=str(raw.get("type") or ""),
        exposition=_number(raw.get("exposition"), 0.0),
        experiment_id=_int(raw.get("experimentId"), 0),
        respool_time=respool if isinstance(respool, int | float) and not isinstance(respool, bool) else None,
        segment_id=segment_id if isinstance(segment_id, int) else None,
        variations=split,
    )


def _variation(raw: Any, where: str, errors: list[str]) -> Variation:
    raw = raw if isinstance(raw, dict) else {}
    variables = [
        Variable(key=str(v.get("key") or ""), type=str(v.get("type") or ""), value=v.get("value", False))
        for v in _list(raw, "variables", where, errors)
        if isinstance(v, dict)
    ]
    return Variation(key=str(raw.get("key") or ""), name=str(raw.get("name") or ""), variables=variables)


def _flag(raw: Any, where: str, environment: str, segments: dict[int, Segment], errors: list[str]) -> Flag:
    raw = raw if isinstance(raw, dict) else {}
    variations = [
        _variation(v, f"{where}.variations[{j}]", errors)
        for j, v in enumerate(_list(raw, "variations", where, errors))
    ]
    rules = [
        _rule(r, f"{where}.rules[{j}]", segments, errors)
        for j, r in enumerate(_list(raw, "rules", where, errors))
    ]
    return Flag(
        id=_int(raw.get("id"), 0),
        key=str(raw.get("featureKey") or ""),
        default_variation_key=str(raw.get("defaultVariationKey") or ""),
        variations=variations,
        environments={
            environment: FlagEnvironment(
                enabled=bool(raw.get("environmentEnabled")), rules=[r for r in rules if r is not None]
            )
        },
    )


def import_datafile(
    base: SiteModel, doc: Any, environment: str, keep_data_api_domain: bool = False
) -> SiteModel:
    """A model whose ``environment`` serves ``doc``; flags, segments and custom data are replaced.

    Site name, environments and goals of ``base`` are kept. Raises :class:`DatafileError`.
    """
    if not isinstance(doc, dict):
        raise DatafileError(["the configuration must be a JSON object"])
    errors: list[str] = []
    segments: dict[int, Segment] = {}
    for i, raw in enumerate(doc.get("segments") or []):  # v3 top-level segments
        _segment(raw, f"segments[{i}]", segments, errors)
    flags: dict[str, Flag] = {}
    for i, raw in enumerate(doc.get("featureFlags") or []):
        flag = _flag(raw, f"featureFlags[{i}]", environment, segments, errors)
        flags[flag.key] = flag  # a duplicate key keeps the first position and the last definition
    if errors:
        raise DatafileError(errors)
    model = SiteModel(
        name=base.name,
        settings=_settings(doc, keep_data_api_domain),
        environments=base.environments,
        custom_data=_custom_data(doc, errors),
        goals=base.goals,
        segments=list(segments.values()),
        flags=list(flags.values()),
    )
    if errors:
        raise DatafileError(errors)
    if environment not in model.environment_keys():
        raise DatafileError([f"unknown environment {environment!r}"])
    model.settings.data_api_auth = base.settings.data_api_auth
    model.next_id = max(base.next_id, max_id(model) + 1)
    return model
