"""Admin API: segments (targeting conditions), goals and custom-data definitions."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from kameleoon_server._validate import custom_data_errors, segment_errors, usage
from kameleoon_server.model import CustomDataDefinition, Goal, Segment, SiteModel
from kameleoon_server.routes._admin_kit import (
    ApiError,
    Call,
    edit,
    endpoint,
    find,
    invalid,
    load,
    merge,
    to_json,
)


class SegmentInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Either ``conditions_data`` (the configuration's own form) or ``conditions`` + ``match``."""

    id: int = 0
    name: str = ""
    conditions_data: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] | None = None
    match: Literal["all", "any"] = "all"


def conditions_data(spec: SegmentInput) -> dict[str, Any] | None:
    if spec.conditions is None:
        return spec.conditions_data
    if spec.conditions_data is not None:
        raise ApiError(422, "give either conditions_data or conditions, not both")
    operators = [spec.match == "any"] * max(len(spec.conditions) - 1, 0)
    return {
        "firstLevelOrOperators": [],
        "firstLevel": [{"orOperators": operators, "conditions": spec.conditions}],
    }


def _segment(call: Call, model: SiteModel) -> Segment:
    segment_id = call.int_param("segment")
    return find(model.segments, lambda s: s.id == segment_id, f"segment {segment_id}")


@endpoint("GET", "/api/sites/{site}/segments", "List segments", tag="segments")
async def list_segments(call: Call) -> Any:
    return to_json((await load(call))[1].segments)


@endpoint(
    "POST",
    "/api/sites/{site}/segments",
    "Create a segment from conditions_data, or from conditions + match (all/any)",
    body=SegmentInput,
    status=201,
    tag="segments",
)
async def post_segment(call: Call) -> Any:
    spec: SegmentInput = call.body

    def change(model: SiteModel) -> Any:
        segment = Segment(id=spec.id, name=spec.name, conditions_data=conditions_data(spec))
        if segment.id and model.segment(segment.id) is not None:
            raise ApiError(409, f"segment {segment.id} exists already")
        model.segments.append(segment)
        model.move_next_id_past_ids()  # an explicit id is never allocated again
        segment.id = segment.id or model.allocate_id()
        invalid(segment_errors(model, segment))
        return to_json(segment)

    return await edit(call, change)


@endpoint("GET", "/api/sites/{site}/segments/{segment}", "A segment", tag="segments")
async def get_segment(call: Call) -> Any:
    return to_json(_segment(call, (await load(call))[1]))


@endpoint(
    "PATCH",
    "/api/sites/{site}/segments/{segment}",
    "Change a segment (name, conditions_data or conditions)",
    body=dict,
    tag="segments",
)
async def patch_segment(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        segment = _segment(call, model)
        spec = merge(
            SegmentInput(id=segment.id, name=segment.name, conditions_data=segment.conditions_data),
            call.body,
            SegmentInput,
            fixed=("id",),
        )
        if spec.conditions is not None and "conditions_data" not in call.body:
            spec.conditions_data = None
        updated = Segment(id=segment.id, name=spec.name, conditions_data=conditions_data(spec))
        model.segments[model.segments.index(segment)] = updated
        invalid(segment_errors(model, updated))
        return to_json(updated)

    return await edit(call, change)


@endpoint(
    "DELETE",
    "/api/sites/{site}/segments/{segment}",
    "Delete a segment unused by rules and conditions",
    status=204,
    tag="segments",
)
async def delete_segment(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        segment = _segment(call, model)
        if users := usage(model, "segment", segment.id):
            raise ApiError(409, "the segment is in use", users)
        model.segments.remove(segment)

    await edit(call, change)


@endpoint("GET", "/api/sites/{site}/goals", "List goals", tag="goals")
async def list_goals(call: Call) -> Any:
    return to_json((await load(call))[1].goals)


@endpoint(
    "POST",
    "/api/sites/{site}/goals",
    "Create a goal (its id is the goalId SDKs track)",
    body=Goal,
    status=201,
    tag="goals",
)
async def post_goal(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        goal: Goal = call.body
        if goal.id and any(g.id == goal.id for g in model.goals):
            raise ApiError(409, f"goal {goal.id} exists already")
        if not goal.name.strip():
            raise ApiError(422, "a goal needs a name")
        model.goals.append(goal)
        model.move_next_id_past_ids()
        goal.id = goal.id or model.allocate_id()
        return to_json(goal)

    return await edit(call, change)


@endpoint("PATCH", "/api/sites/{site}/goals/{goal}", "Rename or retype a goal", body=dict, tag="goals")
async def patch_goal(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        goal_id = call.int_param("goal")
        goal = find(model.goals, lambda g: g.id == goal_id, f"goal {goal_id}")
        updated = merge(goal, call.body, Goal, fixed=("id",))
        if not updated.name.strip():
            raise ApiError(422, "a goal needs a name")
        model.goals[model.goals.index(goal)] = updated
        return to_json(updated)

    return await edit(call, change)


@endpoint(
    "DELETE", "/api/sites/{site}/goals/{goal}", "Delete a goal unused by conditions", status=204, tag="goals"
)
async def delete_goal(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        goal_id = call.int_param("goal")
        goal = find(model.goals, lambda g: g.id == goal_id, f"goal {goal_id}")
        if users := usage(model, "goal", goal.id):
            raise ApiError(409, "the goal is used by targeting conditions", users)
        model.goals.remove(goal)

    await edit(call, change)


@endpoint("GET", "/api/sites/{site}/custom-data", "List custom data definitions", tag="custom data")
async def list_custom_data(call: Call) -> Any:
    return to_json((await load(call))[1].custom_data)


@endpoint(
    "POST",
    "/api/sites/{site}/custom-data",
    "Define a custom data index",
    body=CustomDataDefinition,
    status=201,
    tag="custom data",
)
async def post_custom_data(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        definition: CustomDataDefinition = call.body
        model.custom_data.append(definition)
        model.move_next_id_past_ids()
        definition.id = definition.id or model.allocate_id()
        invalid(custom_data_errors(model, definition))
        return to_json(definition)

    return await edit(call, change)


def _custom(call: Call, model: SiteModel) -> CustomDataDefinition:
    index = call.int_param("index")
    return find(model.custom_data, lambda c: c.index == index, f"custom data index {index}")


@endpoint(
    "PATCH",
    "/api/sites/{site}/custom-data/{index}",
    "Change a custom data definition",
    body=dict,
    tag="custom data",
)
async def patch_custom_data(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        definition = _custom(call, model)
        updated = merge(definition, call.body, CustomDataDefinition, fixed=("id", "index"))
        model.custom_data[model.custom_data.index(definition)] = updated
        invalid(custom_data_errors(model, updated))
        return to_json(updated)

    return await edit(call, change)


@endpoint(
    "DELETE",
    "/api/sites/{site}/custom-data/{index}",
    "Delete a custom data definition unused by conditions",
    status=204,
    tag="custom data",
)
async def delete_custom_data(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        definition = _custom(call, model)
        if users := usage(model, "custom_data", definition.index):
            raise ApiError(409, "the custom data index is used by targeting conditions", users)
        model.custom_data.remove(definition)

    await edit(call, change)
