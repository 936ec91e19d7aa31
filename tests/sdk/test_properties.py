"""Property tests (hypothesis): the hash, the digest limits, the configuration parser, the three
compiled forms of a segment, and the public methods fed arbitrary input."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kameleoon import KameleoonClient
from kameleoon._engine.conditions import Lookups, compile_condition
from kameleoon._engine.decide import evaluate, resolve_key
from kameleoon._engine.hashing import bucket, limit_for
from kameleoon._engine.parse import ConfigError, parse_configuration, parse_configuration_text
from kameleoon._engine.passes import decide_all
from kameleoon._engine.tree import build_tree, compile_memo_tree, compile_tree
from kameleoon._visitors.record import Visitor
from kameleoon.data import (
    Browser,
    BrowserType,
    Conversion,
    Cookie,
    CustomData,
    Device,
    DeviceType,
    Geolocation,
    OperatingSystem,
    OperatingSystemType,
    PageView,
    UniqueIdentifier,
    UserAgent,
)
from kameleoon.exceptions import (
    FeatureEnvironmentDisabled,
    FeatureNotFound,
    FeatureVariableNotFound,
    FeatureVariationNotFound,
    VisitorCodeInvalid,
)
from kameleoon.testing import MockTransport, Request, Response, create_client, flush_tracking

from ._support import (
    bucket_of,
    document,
    entry,
    exact_bucket,
    example_config,
    flag,
    nearest_double_ratio,
    record,
    rule,
    segment,
)

# Every run explores the same examples (derandomize) and nothing is stored between runs.
# (the SDK's tracking thread draws nonces from the ``random`` module while examples are drawn)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def profile(examples: int) -> Any:
    return settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=HEALTH
    )


TOP = (1 << 256) - 1
FAST = profile(150)
MEDIUM = profile(80)


# -- the hash ----------------------------------------------------------------------------------------
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)  # encodable text


@FAST
@given(texts)
def test_bucket_is_the_exact_correctly_rounded_ratio(text: str) -> None:
    """bucket(text) equals the independently computed nearest double of SHA-256 / 2**256, in [0, 1]."""
    value = bucket(text)
    assert value == exact_bucket(text)
    assert 0.0 <= value <= 1.0


@FAST
@given(texts, st.integers(min_value=0, max_value=10**12))
def test_bucket_is_deterministic(code: str, container: int) -> None:
    """The same text always gives the same value."""
    text = f"{code}{container}"
    assert bucket(text) == bucket(text)


@FAST
@given(st.integers(min_value=0, max_value=TOP))
def test_conversion_of_any_digest_is_correctly_rounded(n: int) -> None:
    """For any 256-bit digest the double is the nearest (ties to even) of N / 2**256, in [0, 1]."""
    value = bucket_of(n)
    assert value == nearest_double_ratio(n)
    assert 0.0 <= value <= 1.0


@FAST
@given(st.integers(min_value=0, max_value=TOP), st.integers(min_value=0, max_value=TOP))
def test_conversion_is_monotonic(a: int, b: int) -> None:
    """Larger digests never give smaller values (what makes digest limits possible)."""
    if a <= b:
        assert bucket_of(a) <= bucket_of(b)


thresholds = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1e-60),
    st.sampled_from([0.3, 0.8, 0.34, 0.67, 0.5, 1.0, 0.0, 5e-324, 0.9999999999999999]),
    st.integers(min_value=0, max_value=TOP).map(bucket_of),  # thresholds that are hash values
)


@FAST
@given(thresholds, st.data())
def test_digest_limit_agrees_with_the_float_comparison(threshold: float, data: st.DataObject) -> None:
    """``N <= limit_for(t)`` exactly when ``bucket(N) <= t``, around the limit and anywhere."""
    limit_bytes = limit_for(threshold)
    assert limit_bytes is not None
    limit = int.from_bytes(limit_bytes, "big")
    near = data.draw(st.integers(min_value=max(0, limit - 3), max_value=min(TOP, limit + 3)))
    anywhere = data.draw(st.integers(min_value=0, max_value=TOP))
    for n in (near, anywhere, limit):
        assert (n <= limit) == (bucket_of(n) <= threshold)
        assert (n.to_bytes(32, "big") <= limit_bytes) == (nearest_double_ratio(n) <= threshold)


@FAST
@given(st.one_of(st.floats(allow_nan=True), st.integers(min_value=-(10**30), max_value=10**30)))
def test_digest_limit_of_any_number(threshold: float) -> None:
    """Any number (negative, NaN, > 1, huge) gives a limit consistent with the comparison."""
    limit_bytes = limit_for(threshold)
    for n in (0, 1, 1 << 200, 1 << 255, TOP):
        admitted = limit_bytes is not None and n.to_bytes(32, "big") <= limit_bytes
        assert admitted == (bucket_of(n) <= threshold)


# -- the parser ------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
small_text = st.text(alphabet="abP01./*", max_size=5)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes any JSON value."""
    return st.one_of(plausible, plausible, plausible, json_values)


OPERATOR_NAMES = ["EXACT", "CONTAINS", "REGULAR_EXPRESSION", "EQUAL", "GREATER", "LOWER", "UNDEFINED", "TRUE"]
OPERATOR_NAMES += ["FALSE", "AMONG_VALUES", "ANY", "BAD"]
TYPES = [
    "CUSTOM_DATUM",
    "TARGET_FEATURE_FLAG",
    "EXCLUSIVE_FEATURE_FLAG",
    "DEVICE_TYPE",
    "VISITOR_CODE",
    "PAGE_URL",
    "PAGE_TITLE",
    "PREVIOUS_PAGE",
    "PAGE_VIEWS",
    "CONVERSIONS",
    "SDK_LANGUAGE",
    "BROWSER",
    "COOKIE",
    "GEOLOCATION",
    "OPERATING_SYSTEM",
    "SEGMENT",
    "VISITS",
    "SAME_DAY_VISITS",
    "FIRST_VISIT",
    "LAST_VISIT",
    "NEW_VISITORS",
    "HEAT_SLICE",
    "EXPLICIT_TRIGGER",
    "UNKNOWN",
]
operators = st.sampled_from(OPERATOR_NAMES)
numbers = st.one_of(st.integers(min_value=-2, max_value=6), st.floats(min_value=-2, max_value=6), st.none())
CONDITION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "isInclude": maybe(st.booleans()),
    "customDataIndex": st.one_of(st.sampled_from(["0", "1", "2", "5", "x", ""]), st.none()),
    "valueMatchType": operators,
    "value": maybe(st.one_of(small_text, st.sampled_from(["true", "false", "3", '[1, 0, "a"]', "a.*", "("]))),
    "matchType": maybe(operators),
    "url": maybe(small_text),
    "title": maybe(small_text),
    "pageCount": maybe(numbers),
    "visitCount": maybe(numbers),
    "countInMillis": maybe(numbers),
    "goalId": maybe(st.integers(min_value=-1, max_value=3)),
    "device": maybe(st.sampled_from(["PHONE", "tablet", "DESKTOP", "WATCH"])),
    "os": maybe(st.sampled_from([m.name for m in OperatingSystemType] + ["BEOS"])),
    "browser": maybe(st.sampled_from([m.name for m in BrowserType] + ["IE", "chrome"])),
    "version": maybe(st.sampled_from(["1", "10.15", "3.4.0", "x", "", "120.0.1", "-1"])),
    "versionMatchType": maybe(operators),
    "sdkLanguage": maybe(st.sampled_from(["PYTHON", "JAVA"])),
    "country": maybe(st.sampled_from(["France", "france", "Spain"])),
    "region": maybe(st.sampled_from(["IDF", "idf", None])),
    "city": maybe(st.sampled_from(["Paris", None])),
    "name": maybe(small_text),
    "nameMatchType": maybe(operators),
    "visitorCode": maybe(small_text),
    "featureFlagId": maybe(st.sampled_from([1, 2, 3])),
    "variationKey": maybe(st.sampled_from(["on", "off", None])),
    "ruleId": maybe(st.sampled_from([10, 20, None])),
    "segmentId": maybe(st.sampled_from([500, 501, 999])),
    "visitorType": maybe(st.sampled_from(["NEW", "returning", "X"])),
    "keyMomentId": maybe(st.integers(0, 2)),
    "lowerBound": maybe(numbers),
    "upperBound": maybe(numbers),
}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.one_of(st.sampled_from(TYPES), st.sampled_from(TYPES), json_values))
    names = draw(st.lists(st.sampled_from(sorted(CONDITION_FIELDS)), max_size=6, unique=True))
    cond = {name: draw(CONDITION_FIELDS[name]) for name in names}
    if kind is not None:
        cond["targetingType"] = kind
    return cond


@st.composite
def condition_groups(draw: st.DrawFn) -> dict[str, Any]:
    conds = draw(st.lists(conditions(), max_size=4))
    group: dict[str, Any] = {"conditions": conds}
    if draw(st.booleans()):
        group["orOperators"] = draw(st.lists(maybe(st.booleans()), max_size=len(conds)))
    return draw(maybe(st.just(group)))


@st.composite
def segments(draw: st.DrawFn) -> Any:
    data: dict[str, Any] = {"firstLevel": draw(st.lists(condition_groups(), max_size=3))}
    if draw(st.booleans()):
        data["firstLevelOrOperators"] = draw(st.lists(maybe(st.booleans()), max_size=3))
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return None
    if shape == 1:
        return {}
    if shape == 2:
        return draw(json_values)
    seg: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        seg["id"] = draw(maybe(st.sampled_from([500, 501, 502])))
    if draw(st.integers(0, 9)):
        seg["conditionsData"] = draw(maybe(st.just(data)))
    return seg


entries_ = st.fixed_dictionaries(
    {},
    optional={
        "variationKey": maybe(st.sampled_from(["on", "off", "v"])),
        "variationId": maybe(st.sampled_from([100, 200, None])),
        "exposition": maybe(st.floats(min_value=0, max_value=1)),
    },
)
rules_ = st.fixed_dictionaries(
    {},
    optional={
        "id": maybe(st.sampled_from([10, 20, 30])),
        "type": maybe(st.sampled_from(["EXPERIMENTATION", "TARGETED_DELIVERY", "OTHER"])),
        "exposition": maybe(st.floats(min_value=0, max_value=1)),
        "experimentId": maybe(st.sampled_from([7, 8, None])),
        "respoolTime": maybe(st.sampled_from([None, 0, 1700000000, 1.5])),
        "variationByExposition": maybe(st.lists(entries_, max_size=3)),
        "segment": segments(),
    },
)
variables_ = st.fixed_dictionaries(
    {},
    optional={
        "key": maybe(st.sampled_from(["a", "b"])),
        "type": maybe(st.sampled_from(["BOOLEAN", "NUMBER", "STRING", "JSON", "X"])),
        "value": maybe(st.sampled_from(['{"a": 1}', "[", "3", 3, True])),
    },
)
flags_ = st.fixed_dictionaries(
    {},
    optional={
        "id": maybe(st.sampled_from([1, 2, 3])),
        "featureKey": maybe(st.sampled_from(["f", "g"])),
        "defaultVariationKey": maybe(st.sampled_from(["off", "v"])),
        "environmentEnabled": maybe(st.booleans()),
        "variations": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "key": maybe(st.sampled_from(["on", "off", "v"])),
                        "variables": st.lists(variables_, max_size=2),
                    },
                ),
                max_size=3,
            )
        ),
        "rules": maybe(st.lists(rules_, max_size=3)),
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "configuration": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "consentType": maybe(st.just("REQUIRED")),
                    "realTimeUpdate": json_values,
                    "dataApiDomain": json_values,
                },
            )
        ),
        "customData": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "index": maybe(st.sampled_from([0, 1, "2", "x", None])),
                        "localOnly": json_values,
                        "isMappingIdentifier": maybe(st.booleans()),
                        "scope": maybe(st.just("VISITOR")),
                    },
                ),
                max_size=3,
            )
        ),
        "featureFlags": maybe(st.lists(flags_, max_size=3)),
    },
)


@FAST
@given(json_values)
def test_parser_accepts_or_rejects_any_json(doc: Any) -> None:
    """Any JSON value: parse_configuration returns a model or raises ConfigError, nothing else."""
    with contextlib.suppress(ConfigError):
        parse_configuration(doc)


@FAST
@given(st.one_of(st.text(max_size=50), st.binary(max_size=50)))
def test_parser_accepts_or_rejects_any_text(text: str | bytes) -> None:
    """Any text or bytes: parse_configuration_text raises nothing but ConfigError."""
    with contextlib.suppress(ConfigError):
        parse_configuration_text(text)


@profile(300)
@given(documents)
def test_parser_on_configuration_shaped_documents(doc: dict[str, Any]) -> None:
    """Configuration-shaped documents with odd values: a model or ConfigError, nothing else."""
    with contextlib.suppress(ConfigError):
        parse_configuration(doc)


# -- segments: inline, plain and memoized forms agree ----------------------------------------------------
BASE = parse_configuration(
    document(
        flag(
            "one",
            flag_id=1,
            rules=[rule(10, experiment_id=7, entries=[entry("on", 100, 0.5), entry("off", 200, 0.5)])],
        ),
        flag(
            "two",
            flag_id=2,
            rules=[
                rule(
                    20,
                    experiment_id=8,
                    entries=[entry("v", 300, 1.0)],
                    seg=segment(
                        500,
                        {
                            "targetingType": "CUSTOM_DATUM",
                            "customDataIndex": "0",
                            "valueMatchType": "EXACT",
                            "value": "a",
                        },
                    ),
                ),
                rule(30, seg=segment(501, {"targetingType": "BROWSER", "browser": "CHROME"})),
            ],
        ),
    )
)

data_items = st.one_of(
    st.builds(CustomData, st.sampled_from([0, 1, 2, 5, "1"]), *[small_text] * 2),
    st.builds(
        lambda i, v: CustomData(i, *v),
        st.sampled_from([0, 1, 2]),
        st.lists(
            st.one_of(small_text, st.integers(0, 5), st.sampled_from(["true", "false", "3.5"])), max_size=3
        ),
    ),
    st.builds(
        Browser,
        st.sampled_from(list(BrowserType)),
        st.one_of(st.none(), st.floats(0, 200), st.integers(0, 200)),
    ),
    st.builds(Device, st.sampled_from(list(DeviceType))),
    st.builds(OperatingSystem, st.sampled_from(list(OperatingSystemType))),
    st.builds(
        Geolocation,
        st.sampled_from(["France", "FRANCE", "Spain"]),
        st.sampled_from([None, "IDF", "idf"]),
        st.sampled_from([None, "Paris"]),
    ),
    st.builds(Cookie, st.dictionaries(small_text, small_text, max_size=3)),
    st.builds(PageView, small_text, st.one_of(st.none(), small_text)),
    st.builds(Conversion, st.integers(0, 3), st.floats(0, 10)),
    st.builds(UniqueIdentifier, st.booleans()),
    st.builds(UserAgent, small_text),
)


@st.composite
def visitors(draw: st.DrawFn) -> Visitor | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    visitor = record(*draw(st.lists(data_items, max_size=8)), config=BASE)
    experiments = draw(
        st.dictionaries(st.sampled_from([7, 8, 9]), st.sampled_from([100, 200, 300, 999]), max_size=3)
    )
    if experiments:
        assigned = enumerate(experiments.items())
        visitor.assigned = {e: (v, "EXPERIMENTATION", 0.0, i, -1, None) for i, (e, v) in assigned}
    if draw(st.booleans()):
        visitor.extras().visits = tuple(draw(st.lists(st.floats(0, 2e12), max_size=3)))
    if draw(st.booleans()):
        visitor.extras().kcs = {draw(st.integers(0, 2)): {draw(st.integers(0, 3)): draw(numbers)}}
    return visitor


@MEDIUM
@given(
    st.lists(conditions(), min_size=1, max_size=6),
    st.data(),
    st.lists(visitors(), min_size=1, max_size=3),
    small_text,
    st.sampled_from([7, 8, 9, 0]),
)
def test_inline_plain_and_memoized_segments_agree(
    conds: list[dict[str, Any]], data: st.DataObject, people: list[Visitor | None], code: str, experiment: int
) -> None:
    """Inline, plain and memoized compiled segments agree on random trees x random visitors."""
    lookups = Lookups()
    try:
        leaves = [compile_condition(cond, lookups) for cond in conds]
    except ConfigError:
        return
    lookups.fill(BASE)
    first_level = data.draw(st.booleans())
    ops = data.draw(
        st.lists(st.booleans(), min_size=0 if first_level else len(leaves) - 1, max_size=len(leaves))
    )
    tree = build_tree(leaves, ops, first_level=first_level)
    inline, plain, memo = compile_tree(tree), compile_tree(tree, inline=False), compile_memo_tree(tree)
    assert inline is not None and plain is not None and memo is not None
    for visitor in people:
        expected = plain(visitor, code, experiment)
        assert inline(visitor, code, experiment) is expected
        facts: list[Any] = [None] * lookups.fact_count
        assert memo(visitor, code, experiment, facts) is expected
        assert memo(visitor, code, experiment, facts) is expected  # from remembered facts
        for leaf in leaves:  # each remembered fact is the raw outcome of that condition
            if leaf.fact is not None and facts[leaf.fact] is not None:
                assert facts[leaf.fact] == leaf.check(visitor, code, experiment)


# -- every flag at once: the generated pass decides as the rule loop ------------------------------
@st.composite
def pass_configurations(draw: st.DrawFn) -> dict[str, Any]:
    """A few flags of random rules (both types, odd expositions, respool) whose segments are
    random condition trees, some conditions shared between segments."""
    pool = draw(st.lists(conditions(), min_size=1, max_size=5))
    flags = []
    for f in range(draw(st.integers(1, 4))):
        rules = []
        for r in range(draw(st.integers(0, 3))):
            seg = None
            if draw(st.booleans()):
                picked = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
                ors = draw(st.lists(st.booleans(), min_size=len(picked) - 1, max_size=len(picked) - 1))
                seg = segment(100 * f + r, *picked, or_operators=ors)
            kind = draw(st.sampled_from(["EXPERIMENTATION", "TARGETED_DELIVERY", "OTHER"]))
            expositions = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=0, max_size=3))
            variants = [entry(f"v{k}", 1000 * f + 10 * r + k, x) for k, x in enumerate(expositions)]
            exposition = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0, 1.5]))
            respool = draw(st.sampled_from([None, 5]))
            rules.append(rule(10 * f + r, kind, exposition, 7 + r, variants, seg, respool))
        flags.append(flag(f"flag{f}", rules, flag_id=f, enabled=draw(st.booleans()) or f == 0))
    return document(*flags)


@MEDIUM
@given(pass_configurations(), st.lists(visitors(), min_size=1, max_size=3), small_text)
def test_the_generated_functions_decide_as_the_rule_loop(
    doc: dict[str, Any], people: list[Visitor | None], code: str
) -> None:
    try:
        config = parse_configuration(doc)
    except ConfigError:
        return
    assert config.decide_all is not None
    fallback = dataclasses.replace(config, decide_all=None)  # the per-flag loop with a fact list
    for visitor in people:
        expected = [evaluate(flag, visitor, code) for flag in config.enabled_flags]
        assert decide_all(config, visitor, code) == expected
        assert decide_all(fallback, visitor, code) == expected
        for parsed in config.flags.values():  # each flag's own generated function
            assert parsed.decide is not None
            assert parsed.decide(visitor, code) == evaluate(parsed, visitor, code)
            # again, with the draws the first call missed remembered on the record
            assert parsed.decide(visitor, code) == evaluate(parsed, visitor, code)


# -- remembered decisions: a client deciding again decides as the rule loop ------------------------
decide_step = st.tuples(st.just("decide"), st.integers(0, 3))
decision_steps = st.lists(
    st.one_of(
        decide_step,
        decide_step,
        decide_step,  # mostly decisions
        st.tuples(st.just("data"), st.lists(data_items, min_size=1, max_size=3)),
        st.tuples(st.just("switch")),  # the other configuration: same experiment ids, other rules
        st.tuples(st.just("map")),  # a mapping identifier: another code is hashed from now on
    ),
    min_size=4,
    max_size=20,
)


@MEDIUM
@given(pass_configurations(), pass_configurations(), decision_steps, small_text.filter(bool))
def test_a_client_deciding_again_decides_as_the_rule_loop(
    fuzz_client: KameleoonClient, doc: dict[str, Any], other: dict[str, Any], steps: list[Any], code: str
) -> None:
    """Decisions a visitor's assignments remember (and skip the hashing with) are those the
    rule loop makes, whatever changes between two decisions: the visitor's data, the
    configuration (whose rules reuse the same experiment ids), or the hashed code."""
    try:
        configs = [parse_configuration(doc), parse_configuration(other)]
    except ConfigError:
        return
    fuzz_client._store.clear()
    fuzz_client._install(configs[0], None)
    for step in steps:
        if step[0] == "data":
            fuzz_client.add_data(code, *step[1])
        elif step[0] == "switch":
            fuzz_client._install(configs[1] if fuzz_client._cfg is configs[0] else configs[0], None)
        elif step[0] == "map":
            fuzz_client._store.get_or_create(code).extras().mapping = code + "-linked"
        elif (parsed := fuzz_client._cfg.flags.get(f"flag{step[1]}")) is not None:
            if not parsed.environment_enabled:
                with pytest.raises(FeatureEnvironmentDisabled):
                    fuzz_client.get_feature_variation_key(code, parsed.key)
                continue
            expected = resolve_key(parsed, *evaluate(parsed, fuzz_client._store.get(code), code))
            assert fuzz_client.get_feature_variation_key(code, parsed.key) == expected


# -- decisions on random configurations ------------------------------------------------------------
DECISION_ERRORS = (VisitorCodeInvalid, FeatureNotFound, FeatureEnvironmentDisabled, FeatureVariableNotFound)


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[KameleoonClient]:
    """One test-kit client for the fuzzing tests (reconfigured per example)."""
    client = create_client(example_config(), transport=MockTransport(_remote_answer))
    yield client
    client._close(timeout=1.0)


_REMOTE: dict[str, Any] = {"visitor": None, "map": None}


def _remote_answer(request: Request) -> Response:
    headers = {"content-type": "application/json"}
    if "/oauth/token" in request.url:
        return Response(200, headers, b'{"access_token": "t", "expires_in": 3600}')
    for part, key in (("/visit/visitor", "visitor"), ("/map/map", "map")):
        if part in request.url and _REMOTE[key] is not None:
            return Response(200, headers, json.dumps(_REMOTE[key]).encode())
    return Response(204, {}, b"")


@profile(120)
@given(documents, st.lists(data_items, max_size=6), small_text)
def test_decisions_on_random_configurations_raise_only_documented_errors(
    fuzz_client: KameleoonClient, doc: dict[str, Any], items: list[Any], code: str
) -> None:
    """Whatever a configuration that parses holds, decisions raise only documented exceptions."""
    try:
        config = parse_configuration(doc)
    except ConfigError:
        return
    fuzz_client._install(config, None)
    code = code or "v"
    fuzz_client.add_data(code, *items)
    calls = (
        (fuzz_client.get_feature_variation_key, (code,), ()),
        (fuzz_client.is_feature_active, (code,), ()),
        (fuzz_client.get_feature_variable, (code,), ("a",)),
        (fuzz_client.get_feature_variation_variables, (), ("on",)),
    )
    for key in list(config.flags):
        for method, before, after in calls:
            with contextlib.suppress(*DECISION_ERRORS, FeatureVariationNotFound):
                method(*before, key, *after)
    fuzz_client.get_active_features(code)
    fuzz_client.get_active_feature_list_for_visitor(code)
    fuzz_client.get_engine_tracking_code(code)
    fuzz_client.flush(code, instant=True)


# -- public methods fed arbitrary input -------------------------------------------------------------------
# data objects holding values of the wrong type (the constructors do not check)
malformed_items = st.one_of(
    st.builds(PageView, small_text.filter(bool), small_text, st.one_of(st.integers(), st.just([object()]))),
    st.builds(lambda i, v: CustomData(i, v), st.integers(0, 3), st.lists(st.integers(), max_size=2)),
    st.builds(Browser, st.sampled_from(["chrome", None, 1.5])),  # type: ignore[arg-type]
    st.builds(OperatingSystem, st.sampled_from(["LINUX", None])),  # type: ignore[arg-type]
    st.builds(Device, st.sampled_from(["PHONE", None, 5])),  # type: ignore[arg-type]
    st.builds(Geolocation, st.sampled_from([5, None, ["x"]])),  # type: ignore[arg-type]
    st.builds(Conversion, st.sampled_from([None, "g", [1]]), st.sampled_from([None, "x"])),  # type: ignore[arg-type]
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.text(min_size=256, max_size=260),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.sampled_from(
        ["visitor_42", "new_checkout", "recommendations", "pricing_banner", "steps", "widget", "on", ""]
    ),
    st.builds(object),
    data_items,
    malformed_items,
)

codes = st.one_of(small_text.filter(bool), st.sampled_from(["visitor_42", "visitor_8", "anon-77", "crm-555"]))
items = st.one_of(data_items, malformed_items)

# method -> (positional parameters, exceptions it may raise)
PUBLIC: dict[str, tuple[int, int, tuple[type[BaseException], ...]]] = {
    "is_feature_active": (2, 3, (VisitorCodeInvalid, FeatureNotFound)),
    "get_feature_variation_key": (2, 3, (VisitorCodeInvalid, FeatureNotFound, FeatureEnvironmentDisabled)),
    "get_feature_variable": (3, 4, DECISION_ERRORS),
    "get_feature_variation_variables": (
        1,
        2,
        (FeatureNotFound, FeatureEnvironmentDisabled, FeatureVariationNotFound),
    ),
    "get_active_features": (1, 1, (VisitorCodeInvalid,)),
    "get_active_feature_list_for_visitor": (1, 1, ()),
    "get_feature_list": (0, 0, ()),
    "get_engine_tracking_code": (1, 1, ()),
    "add_data": (1, 6, (VisitorCodeInvalid,)),
    "track_conversion": (2, 4, (VisitorCodeInvalid,)),
    "flush": (0, 3, (VisitorCodeInvalid,)),
    "set_legal_consent": (2, 3, (VisitorCodeInvalid,)),
    "get_visitor_code": (0, 3, (VisitorCodeInvalid,)),
    "get_remote_data": (1, 2, ()),
    "get_remote_visitor_data": (1, 5, ()),
    "get_visitor_warehouse_audience": (2, 4, (VisitorCodeInvalid,)),
    "on_update_configuration": (1, 1, ()),
}


@profile(400)
@given(st.sampled_from(sorted(PUBLIC)), st.data(), json_values, json_values)
def test_public_methods_raise_only_documented_errors(
    fuzz_client: KameleoonClient, name: str, data: st.DataObject, visitor_json: Any, map_json: Any
) -> None:
    """Public methods fed arbitrary arguments and remote answers raise only documented errors."""
    fuzz_client._install(parse_configuration(example_config()), None)
    _REMOTE["visitor"], _REMOTE["map"] = visitor_json, map_json
    low, high, allowed = PUBLIC[name]
    count = data.draw(st.integers(low, high))
    args = [
        data.draw(st.one_of(codes, anything) if i == 0 else st.one_of(anything, items)) for i in range(count)
    ]
    with contextlib.suppress(*allowed):
        getattr(fuzz_client, name)(*args)
    fuzz_client.on_update_configuration(None)
    if args and isinstance(args[0], str) and 0 < len(args[0]) <= 255:
        fuzz_client.flush(args[0], instant=True)


def test_tracking_survives_the_fuzzing(fuzz_client: KameleoonClient) -> None:
    """After all the odd input above, the tracking thread still delivers."""
    fuzz_client.track_conversion("after-fuzz", 1)
    assert flush_tracking(fuzz_client, timeout=10.0) is True


@MEDIUM
@given(st.lists(data_items, max_size=8), small_text)
def test_data_then_decisions_and_tracking(items: list[Any], code: str) -> None:
    """Well-typed data then every decision method: documented errors only; the data is sent."""
    client = create_client(example_config())
    try:
        code = code or "v"
        client.add_data(code, *items)
        for key in client.get_feature_list():
            with contextlib.suppress(*DECISION_ERRORS):
                client.get_feature_variable(code, key, "steps")
        client.get_active_features(code)
        client.flush(code)
        assert flush_tracking(client)
    finally:
        client._close(timeout=1.0)


@FAST
@given(st.floats(allow_nan=False, min_value=0, max_value=1))
def test_rounding_of_thresholds_near_hash_values(threshold: float) -> None:
    """limit_for never admits a digest whose value exceeds the threshold, even one ulp away."""
    limit = limit_for(threshold)
    assert limit is not None
    value = bucket_of(int.from_bytes(limit, "big"))
    assert value <= threshold
    assert math.isfinite(value)
