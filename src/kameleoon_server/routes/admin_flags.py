"""Admin API: feature flags, variations, variables, per-environment state and rules."""

from __future__ import annotations

from typing import Any

import msgspec

from kameleoon_server._validate import flag_errors, rule_errors, usage, variable_errors
from kameleoon_server.model import Flag, FlagEnvironment, Rule, SiteModel, Variable, Variation
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

FLAG = "/api/sites/{site}/flags/{flag}"
MAX_POSITION = 10**9  # a rule position beyond the list puts the rule last (list.insert)
RULES = FLAG + "/environments/{env}/rules"


class VariableValue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: str
    value: Any = None


class RuleOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rule_ids: list[int]


def allocate_rule_ids(model: SiteModel, rule: Rule, previous: Rule | None = None) -> None:
    """Gives a rule its id, experiment id and variation ids; keeps ids a variation had before."""
    rule.id = rule.id or model.allocate_id()
    rule.experiment_id = rule.experiment_id or model.allocate_id()
    known = {e.variation_key: e.variation_id for e in previous.variations} if previous else {}
    for entry in rule.variations:
        if entry.variation_id is None:
            entry.variation_id = known.get(entry.variation_key) or model.allocate_id()


def _flag(call: Call, model: SiteModel) -> Flag:
    key = call.param("flag")
    return find(model.flags, lambda f: f.key == key, f"flag {key!r}")


def _environment(call: Call, model: SiteModel, flag: Flag) -> FlagEnvironment:
    key = call.param("env")
    if key not in model.environment_keys():
        raise ApiError(404, f"unknown environment {key!r}")
    return flag.environments.setdefault(key, FlagEnvironment())


def _rule(call: Call, env: FlagEnvironment) -> Rule:
    rule_id = call.int_param("rule")
    return find(env.rules, lambda r: r.id == rule_id, f"rule {rule_id}")


def _checked(model: SiteModel, flag: Flag) -> Any:
    invalid(flag_errors(model, flag))
    return to_json(flag)


@endpoint("GET", "/api/sites/{site}/flags", "List feature flags", tag="flags")
async def list_flags(call: Call) -> Any:
    return to_json((await load(call))[1].flags)


@endpoint(
    "POST",
    "/api/sites/{site}/flags",
    "Create a feature flag (variations off/on when none given)",
    body=Flag,
    status=201,
    tag="flags",
)
async def post_flag(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        flag: Flag = call.body
        if not flag.variations:
            flag.variations = [Variation(key="off", name="Off"), Variation(key="on", name="On")]
        model.flags.append(flag)
        model.move_next_id_past_ids()  # ids given in the body are never allocated again
        flag.id = flag.id or model.allocate_id()
        for env in flag.environments.values():
            for rule in env.rules:
                allocate_rule_ids(model, rule)
        return _checked(model, flag)

    return await edit(call, change)


@endpoint("GET", FLAG, "A feature flag", tag="flags")
async def get_flag(call: Call) -> Any:
    return to_json(_flag(call, (await load(call))[1]))


@endpoint(
    "PATCH",
    FLAG,
    "Change a flag (name, default_variation_key, variations, environments)",
    body=dict,
    tag="flags",
)
async def patch_flag(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        updated = merge(flag, call.body, Flag, fixed=("id", "key"))
        model.flags[model.flags.index(flag)] = updated
        model.move_next_id_past_ids()
        for env_key, env in updated.environments.items():
            old = flag.environments.get(env_key, FlagEnvironment())
            for rule in env.rules:
                allocate_rule_ids(model, rule, next((r for r in old.rules if r.id == rule.id), None))
        return _checked(model, updated)

    return await edit(call, change)


@endpoint("DELETE", FLAG, "Delete a flag", status=204, tag="flags")
async def delete_flag(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        flag = _flag(call, model)
        if users := usage(model, "flag", flag.id):
            raise ApiError(409, "the flag is used by targeting conditions", users)
        model.flags.remove(flag)

    await edit(call, change)


@endpoint("POST", FLAG + "/variations", "Add a variation", body=Variation, status=201, tag="flags")
async def post_variation(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        flag.variations.append(call.body)
        return _checked(model, flag)

    return await edit(call, change)


@endpoint(
    "PATCH", FLAG + "/variations/{variation}", "Change a variation (name, variables)", body=dict, tag="flags"
)
async def patch_variation(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        key = call.param("variation")
        variation = find(flag.variations, lambda v: v.key == key, f"variation {key!r}")
        flag.variations[flag.variations.index(variation)] = merge(
            variation, call.body, Variation, fixed=("key",)
        )
        return _checked(model, flag)

    return await edit(call, change)


@endpoint(
    "DELETE", FLAG + "/variations/{variation}", "Delete a variation unused by rules", status=204, tag="flags"
)
async def delete_variation(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        flag = _flag(call, model)
        key = call.param("variation")
        variation = find(flag.variations, lambda v: v.key == key, f"variation {key!r}")
        if users := usage(model, "variation", (flag.key, key)):
            raise ApiError(409, "the variation is used by rules", users)
        flag.variations.remove(variation)
        invalid(flag_errors(model, flag))

    await edit(call, change)


@endpoint(
    "PUT",
    FLAG + "/variations/{variation}/variables/{variable}",
    "Set a variable of a variation (type BOOLEAN, NUMBER, STRING, JSON, JS or CSS)",
    body=VariableValue,
    tag="flags",
)
async def put_variable(call: Call) -> Any:
    spec: VariableValue = call.body
    variable = Variable(key=call.param("variable"), type=spec.type, value=spec.value)
    invalid(variable_errors(variable))

    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        key = call.param("variation")
        variation = find(flag.variations, lambda v: v.key == key, f"variation {key!r}")
        kept = [v for v in variation.variables if v.key != variable.key]
        position = next((i for i, v in enumerate(variation.variables) if v.key == variable.key), len(kept))
        variation.variables = [*kept[:position], variable, *kept[position:]]
        return _checked(model, flag)

    return await edit(call, change)


@endpoint(
    "DELETE",
    FLAG + "/variations/{variation}/variables/{variable}",
    "Delete a variable",
    status=204,
    tag="flags",
)
async def delete_variable(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        flag = _flag(call, model)
        key, name = call.param("variation"), call.param("variable")
        variation = find(flag.variations, lambda v: v.key == key, f"variation {key!r}")
        find(variation.variables, lambda v: v.key == name, f"variable {name!r}")
        variation.variables = [v for v in variation.variables if v.key != name]

    await edit(call, change)


@endpoint(
    "PATCH",
    FLAG + "/environments/{env}",
    'Enable or disable a flag in an environment ({"enabled": true})',
    body=dict,
    tag="rules",
)
async def patch_flag_environment(call: Call) -> Any:
    if set(call.body) - {"enabled"} or not isinstance(call.body.get("enabled"), bool):
        raise ApiError(422, 'expected {"enabled": true|false}')

    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        _environment(call, model, flag).enabled = call.body["enabled"]
        return _checked(model, flag)

    return await edit(call, change)


@endpoint("GET", RULES, "List a flag's rules in an environment, in evaluation order", tag="rules")
async def list_rules(call: Call) -> Any:
    model = (await load(call))[1]
    flag = _flag(call, model)
    return to_json(_environment(call, model, flag).rules)


@endpoint(
    "POST", RULES, "Add a rule (query position: index, default last)", body=Rule, status=201, tag="rules"
)
async def post_rule(call: Call) -> Any:
    position = call.int_query("position", MAX_POSITION, -MAX_POSITION, MAX_POSITION)

    def change(model: SiteModel) -> Any:
        rule: Rule = call.body
        flag = _flag(call, model)
        env = _environment(call, model, flag)
        if rule.id and any(r.id == rule.id for r in env.rules):
            raise ApiError(409, f"rule {rule.id} exists already")
        env.rules.insert(position, rule)
        model.move_next_id_past_ids()
        allocate_rule_ids(model, rule)
        invalid(rule_errors(model, flag, rule))
        return to_json(rule)

    return await edit(call, change)


@endpoint("GET", RULES + "/{rule}", "A rule", tag="rules")
async def get_rule(call: Call) -> Any:
    model = (await load(call))[1]
    flag = _flag(call, model)
    return to_json(_rule(call, _environment(call, model, flag)))


@endpoint(
    "PATCH",
    RULES + "/{rule}",
    "Change a rule (exposition, variations split, segment_id, respool_time, type, name)",
    body=dict,
    tag="rules",
)
async def patch_rule(call: Call) -> Any:
    def change(model: SiteModel) -> Any:
        flag = _flag(call, model)
        env = _environment(call, model, flag)
        rule = _rule(call, env)
        updated = merge(rule, call.body, Rule, fixed=("id",))
        env.rules[env.rules.index(rule)] = updated
        model.move_next_id_past_ids()
        allocate_rule_ids(model, updated, rule)  # new split entries reuse their variation's old id
        invalid(rule_errors(model, flag, updated))
        return to_json(updated)

    return await edit(call, change)


@endpoint("DELETE", RULES + "/{rule}", "Delete a rule", status=204, tag="rules")
async def delete_rule(call: Call) -> Any:
    def change(model: SiteModel) -> None:
        flag = _flag(call, model)
        env = _environment(call, model, flag)
        env.rules.remove(_rule(call, env))

    await edit(call, change)


@endpoint(
    "PUT",
    FLAG + "/environments/{env}/rule-order",
    'Reorder rules ({"rule_ids": [...]})',
    body=RuleOrder,
    tag="rules",
)
async def put_rule_order(call: Call) -> Any:
    order: list[int] = call.body.rule_ids

    def change(model: SiteModel) -> Any:
        env = _environment(call, model, _flag(call, model))
        if sorted(order) != sorted(r.id for r in env.rules):
            raise ApiError(422, "rule_ids must list every rule of the environment exactly once")
        env.rules.sort(key=lambda r: order.index(r.id))
        return to_json(env.rules)

    return await edit(call, change)
