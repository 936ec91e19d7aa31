"""Builds the served configuration document (evaluation.md §1, protocol.md §2.3) from a site model.

Pure. ``v3=False`` gives the 3.4.0 document (segments embedded in rules); ``v3=True`` adds what
3.22.2 reads from ``/v3/{siteCode}`` (top-level ``segments`` referenced by ``segmentId``,
``dateModified``, variation names). Both are valid for both SDK generations.
"""

from __future__ import annotations

from typing import Any

from kameleoon_server.model import Flag, Rule, Segment, SiteModel


def _segment(segment: Segment) -> dict[str, Any]:
    return {"id": segment.id, "name": segment.name, "conditionsData": segment.conditions_data}


def _rule(rule: Rule, order: int, segments: dict[int, Segment], v3: bool) -> dict[str, Any]:
    segment = segments.get(rule.segment_id) if rule.segment_id is not None else None
    out: dict[str, Any] = {
        "id": rule.id,
        "order": order,
        "type": rule.type,
        "exposition": rule.exposition,
        "experimentId": rule.experiment_id,
        "respoolTime": rule.respool_time,
        "variationByExposition": [
            {"variationKey": e.variation_key, "variationId": e.variation_id, "exposition": e.exposition}
            for e in rule.variations
        ],
        "segment": None if segment is None else _segment(segment),
    }
    if v3:
        out["segmentId"] = None if segment is None else segment.id
    return out


def _flag(flag: Flag, environment: str, segments: dict[int, Segment], v3: bool) -> dict[str, Any]:
    env = flag.environments.get(environment)
    variations = []
    for variation in flag.variations:
        item: dict[str, Any] = {
            "key": variation.key,
            "variables": [{"key": v.key, "type": v.type, "value": v.value} for v in variation.variables],
        }
        if v3:
            item["name"] = variation.name or variation.key
        variations.append(item)
    return {
        "id": flag.id,
        "featureKey": flag.key,
        "defaultVariationKey": flag.default_variation_key,
        "environmentEnabled": bool(env and env.enabled),
        "variations": variations,
        "rules": [_rule(r, i + 1, segments, v3) for i, r in enumerate(env.rules if env else [])],
    }


def build_datafile(model: SiteModel, environment: str, updated_ms: int, v3: bool = False) -> dict[str, Any]:
    """The configuration document of one environment."""
    settings = model.settings
    configuration: dict[str, Any] = {
        "realTimeUpdate": settings.real_time_update,
        "consentType": settings.consent_type,
    }
    if settings.data_api_domain:  # only when configured: 3.4.0 would switch its data host to it
        configuration["dataApiDomain"] = settings.data_api_domain
    segments = {s.id: s for s in model.segments}
    document: dict[str, Any] = {
        "configuration": configuration,
        "customData": [
            {
                "id": c.id,
                "index": c.index,
                "name": c.name,
                "scope": c.scope,
                "localOnly": c.local_only,
                "isMappingIdentifier": c.is_mapping_identifier,
            }
            for c in model.custom_data
        ],
        "featureFlags": [_flag(f, environment, segments, v3) for f in model.flags],
    }
    if v3:
        document["segments"] = [{**_segment(s), "audienceTracking": False} for s in model.segments]
        document["dateModified"] = updated_ms
    return document
