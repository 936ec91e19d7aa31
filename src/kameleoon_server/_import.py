"""Turns a configuration document (evaluation.md §1, or the v3 form) into a site model. Pure.

Only what the SDK would accept is accepted (§1.10), and the resulting model must pass the admin
API's own checks (``site_errors``: keys, splits, variable types, ids present, in 1..2**63-1 and
unique within their kind); everything the SDK reads is kept, so the configuration served
afterwards makes the same decisions as the imported one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kameleoon_server._conditions import conditions_data_errors
from kameleoon_server._integers import is_int, is_number
from kameleoon_server._validate import site_errors
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
)


class DatafileError(ValueError):
    """The document would be rejected by the SDK; ``errors`` lists why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _list(obj: dict[str, Any], key: str, where: str, errors: list[str]) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        errors.append(f"{where}.{key} must be a list".lstrip("."))
        return []
    return value


def _objects(
    obj: dict[str, Any], key: str, where: str, errors: list[str], nullable: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a list of objects, each with its place for messages (``nullable``: null is
    an empty list, as the SDK reads the top-level lists)."""
    out = []
    prefix = f"{where}.{key}".lstrip(".")
    values = [] if nullable and obj.get(key) is None else _list(obj, key, where, errors)
    for i, entry in enumerate(values):
        if isinstance(entry, dict):
            out.append((f"{prefix}[{i}]", entry))
        else:
            errors.append(f"{prefix}[{i}] must be an object")
    return out


def _id(obj: dict[str, Any], key: str, where: str, errors: list[str]) -> int:
    """A required integer id (its range is checked with the whole model); 0 when missing."""
    value = obj.get(key)
    if is_int(value):
        return value
    errors.append(f"{where}.{key} must be an integer")
    return 0


def _number(obj: dict[str, Any], key: str, where: str, errors: list[str]) -> float:
    """An optional number (0 when missing or null, as the SDK reads it); anything else is an
    error rather than a value the model would serve differently."""
    value = obj.get(key)
    if value is None:
        return 0.0
    if is_number(value):
        return float(value)
    errors.append(f"{where}.{key} must be a number")
    return 0.0


def _respool(raw: dict[str, Any], where: str, errors: list[str]) -> int | float | None:
    """``respoolTime``: a number or null. The SDK hashes any other value's text, which the
    model cannot keep: refused rather than served as null (other decisions)."""
    value = raw.get("respoolTime")
    if value is None or is_number(value):
        return value
    errors.append(f"{where}.respoolTime must be a number or null")
    return None


def _settings(doc: dict[str, Any], keep_data_api_domain: bool, errors: list[str]) -> SiteSettings:
    conf = doc.get("configuration") or {}
    if not isinstance(conf, dict):
        errors.append("configuration must be an object")
        conf = {}
    domain = conf.get("dataApiDomain") if keep_data_api_domain else None
    return SiteSettings(
        real_time_update=bool(conf.get("realTimeUpdate")),
        consent_type="REQUIRED" if conf.get("consentType") == "REQUIRED" else "NOT_REQUIRED",
        data_api_domain=domain if isinstance(domain, str) else None,
    )


def _custom_data(doc: dict[str, Any], errors: list[str]) -> list[CustomDataDefinition]:
    out = []
    for where, entry in _objects(doc, "customData", "", errors, nullable=True):
        if entry.get("index") is None:  # skipped by the SDK too
            continue
        try:
            index = int(entry["index"])
        except (TypeError, ValueError):
            errors.append(f"{where}.index must be an integer")
            continue
        out.append(
            CustomDataDefinition(
                id=0 if entry.get("id") is None else _id(entry, "id", where, errors),  # 0: allocated
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
    if not isinstance(raw, dict) or not is_int(raw.get("id")) or "conditionsData" not in raw:
        errors.append(f"{where}.segment needs an integer id and a conditionsData key")
        return None
    errors += [f"{where}.segment: {e}" for e in conditions_data_errors(raw["conditionsData"], strict=False)]
    segment = Segment(id=raw["id"], name=str(raw.get("name") or ""), conditions_data=raw["conditionsData"])
    known = segments.setdefault(segment.id, segment)
    if known.conditions_data != segment.conditions_data:
        errors.append(f"{where}.segment: segment {segment.id} is defined twice with different conditions")
    return segment.id


def _rule(raw: Any, where: str, segments: dict[int, Segment], errors: list[str]) -> Rule | None:
    if not isinstance(raw, dict) or not is_int(raw.get("id")):
        errors.append(f"{where} needs an integer id")
        return None
    split = [
        SplitEntry(
            variation_key=str(e.get("variationKey") or ""),
            variation_id=_id(e, "variationId", place, errors),
            exposition=_number(e, "exposition", place, errors),
        )
        for place, e in _objects(raw, "variationByExposition", where, errors)
    ]
    segment_id = raw.get("segmentId") if "segmentId" in raw and "segment" not in raw else None
    if segment_id is None:
        segment_id = _segment(raw.get("segment"), where, segments, errors)
    elif not is_int(segment_id):
        errors.append(f"{where}.segmentId must be an integer or null")
    return Rule(
        id=raw["id"],
        type=str(raw.get("type") or ""),
        exposition=_number(raw, "exposition", where, errors),
        experiment_id=_id(raw, "experimentId", where, errors),
        respool_time=_respool(raw, where, errors),
        segment_id=segment_id if is_int(segment_id) else None,
        variations=split,
    )


def _variation(raw: dict[str, Any], where: str, errors: list[str]) -> Variation:
    variables = [
        Variable(key=str(v.get("key") or ""), type=str(v.get("type") or ""), value=v.get("value", False))
        for _, v in _objects(raw, "variables", where, errors)
    ]
    return Variation(key=str(raw.get("key") or ""), name=str(raw.get("name") or ""), variables=variables)


def _flag(
    raw: dict[str, Any], where: str, environment: str, segments: dict[int, Segment], errors: list[str]
) -> Flag:
    variations = [_variation(v, place, errors) for place, v in _objects(raw, "variations", where, errors)]
    rules = [
        _rule(r, f"{where}.rules[{j}]", segments, errors)
        for j, r in enumerate(_list(raw, "rules", where, errors))
    ]
    return Flag(
        id=_id(raw, "id", where, errors),
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
    """A model whose ``environment`` serves ``doc``. Raises :class:`DatafileError`.

    The flags (variations included) and custom data definitions become the document's; the
    other environments keep what ``base`` gives them: their rules and enabled state, for the
    flags of the document, and the flags the document leaves out that another environment
    enables or has rules for (served disabled, without rules, here). Segments of ``base`` that
    the document does not redefine are kept. Site name, environments and goals are ``base``'s.
    """
    if not isinstance(doc, dict):
        raise DatafileError(["the configuration must be a JSON object"])
    if environment not in base.environment_keys():
        raise DatafileError([f"unknown environment {environment!r}"])
    errors: list[str] = []
    segments: dict[int, Segment] = {}
    for where, raw in _objects(doc, "segments", "", errors, nullable=True):  # v3 top-level segments
        _segment(raw, where, segments, errors)
    flags: dict[str, Flag] = {}
    for where, raw in _objects(doc, "featureFlags", "", errors, nullable=True):
        flag = _flag(raw, where, environment, segments, errors)
        flags[flag.key] = flag  # a duplicate key keeps the first position and the last definition
    _keep_other_environments(base, environment, flags, segments)
    model = SiteModel(
        name=base.name,
        settings=_settings(doc, keep_data_api_domain, errors),
        environments=base.environments,
        custom_data=_custom_data(doc, errors),
        goals=base.goals,
        segments=list(segments.values()),
        flags=list(flags.values()),
        next_id=base.next_id,
    )
    if errors:
        raise DatafileError(errors)
    model.settings.data_api_auth = base.settings.data_api_auth
    _allocate_missing_ids(model)
    if errors := site_errors(model):
        if any("used more than once" in e and f"({environment})" in e for e in errors):
            errors.append(_SHARED_IDS_HINT)
        raise DatafileError(errors)
    return model


_SHARED_IDS_HINT = (
    "ids are unique across the site, and the other environments keep their rules: a document"
    " exported from another environment carries that environment's rule, experiment and variation"
    " ids; give them new ones to import it here"
)


def _keep_other_environments(
    base: SiteModel, environment: str, flags: dict[str, Flag], segments: dict[int, Segment]
) -> None:
    """What the other environments of ``base`` keep through an import into ``environment``."""
    for flag in base.flags:
        others = {key: env for key, env in flag.environments.items() if key != environment}
        imported = flags.get(flag.key)
        if imported is not None:
            imported.environments = {**others, **imported.environments}
        elif any(env.enabled or env.rules for env in others.values()):
            flags[flag.key] = msgspec.structs.replace(flag, environments=others)
    for segment in base.segments:
        segments.setdefault(segment.id, segment)


def _allocate_missing_ids(model: SiteModel) -> None:
    """Moves ``next_id`` past the imported ids, then gives ids to custom data imported without one
    (the vendor's documents have none; the SDK does not read them)."""
    model.move_next_id_past_ids()
    for definition in model.custom_data:
        definition.id = definition.id or model.allocate_id()
