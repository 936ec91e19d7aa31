"""The ``--demo`` site: flags of both rule types, several variations, variables of every type,
segments with several condition types and goals. Created once; later starts reuse it."""

from __future__ import annotations

from dataclasses import dataclass

from kameleoon_server._validate import flag_errors, segment_errors
from kameleoon_server.model import (
    CustomDataDefinition,
    Flag,
    FlagEnvironment,
    Goal,
    Rule,
    Segment,
    SiteModel,
    SiteSettings,
    SplitEntry,
    Variable,
    Variation,
    encode_model,
)
from kameleoon_server.routes.admin_flags import allocate_rule_ids
from kameleoon_server.routes.admin_sites import create_credential
from kameleoon_server.state import ServerState, now_ms
from kameleoon_server.storage import AlreadyExists

DEMO_SITE_CODE = "demo"
_SECRET_SETTING = "demo.credentials"


@dataclass(frozen=True, slots=True)
class DemoSite:
    site_code: str
    client_id: str
    client_secret: str


def _conditions(*conditions: dict[str, object], any_of: bool = False) -> dict[str, object]:
    ops = [any_of] * (len(conditions) - 1)
    return {"firstLevelOrOperators": [], "firstLevel": [{"orOperators": ops, "conditions": list(conditions)}]}


def _segments(model: SiteModel) -> tuple[Segment, Segment, Segment]:
    premium = Segment(
        id=model.allocate_id(),
        name="Premium desktop visitors",
        conditions_data=_conditions(
            {
                "targetingType": "CUSTOM_DATUM",
                "isInclude": True,
                "customDataIndex": "0",
                "valueMatchType": "EXACT",
                "value": "premium",
            },
            {"targetingType": "DEVICE_TYPE", "isInclude": True, "device": "DESKTOP"},
        ),
    )
    returning = Segment(
        id=model.allocate_id(),
        name="French or returning visitors",
        conditions_data=_conditions(
            {
                "targetingType": "GEOLOCATION",
                "isInclude": True,
                "country": "France",
                "region": None,
                "city": None,
            },
            {"targetingType": "NEW_VISITORS", "isInclude": True, "visitorType": "RETURNING"},
            any_of=True,
        ),
    )
    shoppers = Segment(
        id=model.allocate_id(),
        name="Chrome shoppers",
        conditions_data=_conditions(
            {"targetingType": "PAGE_URL", "isInclude": True, "url": "/shop", "matchType": "CONTAINS"},
            {
                "targetingType": "BROWSER",
                "isInclude": True,
                "browser": "CHROME",
                "version": "100",
                "versionMatchType": "GREATER",
            },
            {"targetingType": "SDK_LANGUAGE", "isInclude": True, "sdkLanguage": "PYTHON"},
        ),
    )
    return premium, returning, shoppers


def _checkout_variation(key: str, color: str, steps: float, express: bool, layout: str) -> Variation:
    return Variation(
        key=key,
        name=key.replace("_", " ").title(),
        variables=[
            Variable(key="button_color", type="STRING", value=color),
            Variable(key="steps", type="NUMBER", value=steps),
            Variable(key="express", type="BOOLEAN", value=express),
            Variable(key="layout", type="JSON", value=layout),
        ],
    )


def _rule(
    model: SiteModel, kind: str, exposition: float, split: dict[str, float], segment: int | None
) -> Rule:
    rule = Rule(
        type=kind,
        exposition=exposition,
        segment_id=segment,
        variations=[SplitEntry(variation_key=k, exposition=v) for k, v in split.items()],
    )
    allocate_rule_ids(model, rule)
    return rule


def _flags(model: SiteModel, premium: int, returning: int, shoppers: int) -> list[Flag]:
    checkout = Flag(
        id=model.allocate_id(),
        key="new_checkout",
        name="New checkout",
        variations=[
            _checkout_variation("off", "grey", 3, False, '{"columns": 1}'),
            _checkout_variation("on", "green", 2, False, '{"columns": 2}'),
            _checkout_variation("express", "orange", 1, True, '{"columns": 2, "sticky": true}'),
        ],
    )
    checkout.environments = {
        "production": FlagEnvironment(
            enabled=True,
            rules=[
                _rule(model, "TARGETED_DELIVERY", 1.0, {"express": 1.0}, premium),
                _rule(model, "EXPERIMENTATION", 1.0, {"off": 0.34, "on": 0.33, "express": 0.33}, None),
            ],
        ),
        "staging": FlagEnvironment(
            enabled=True,
            rules=[
                _rule(model, "EXPERIMENTATION", 1.0, {"off": 0.5, "on": 0.5}, None),
            ],
        ),
    }
    banner = Flag(
        id=model.allocate_id(),
        key="welcome_banner",
        name="Welcome banner",
        variations=[
            Variation(key="off", variables=[Variable(key="message", type="STRING", value="")]),
            Variation(key="on", variables=[Variable(key="message", type="STRING", value="Welcome back!")]),
        ],
    )
    banner.environments = {
        "production": FlagEnvironment(
            enabled=True,
            rules=[
                _rule(model, "TARGETED_DELIVERY", 0.5, {"on": 1.0}, returning),
            ],
        )
    }
    recommendations = Flag(
        id=model.allocate_id(),
        key="recommendations",
        default_variation_key="classic",
        variations=[
            Variation(key="classic", variables=[Variable(key="widget", type="JSON", value='{"slots": 4}')]),
            Variation(
                key="ml", variables=[Variable(key="widget", type="JSON", value='{"slots": 8, "model": "v2"}')]
            ),
        ],
    )
    recommendations.environments = {
        "production": FlagEnvironment(
            enabled=True,
            rules=[
                _rule(model, "EXPERIMENTATION", 0.8, {"classic": 0.5, "ml": 0.5}, shoppers),
            ],
        )
    }
    return [checkout, banner, recommendations]


def demo_model() -> SiteModel:
    """The demo configuration model (validated)."""
    model = SiteModel(name="Demo site", settings=SiteSettings(real_time_update=True))
    model.custom_data = [
        CustomDataDefinition(id=model.allocate_id(), index=0, name="plan", scope="VISITOR"),
        CustomDataDefinition(
            id=model.allocate_id(), index=1, name="user_id", scope="VISITOR", is_mapping_identifier=True
        ),
        CustomDataDefinition(id=model.allocate_id(), index=2, name="interests"),
    ]
    model.goals = [Goal(id=model.allocate_id(), name="purchase"), Goal(id=model.allocate_id(), name="signup")]
    premium, returning, shoppers = _segments(model)
    model.segments = [premium, returning, shoppers]
    model.flags = _flags(model, premium.id, returning.id, shoppers.id)
    errors = [e for s in model.segments for e in segment_errors(model, s)]
    errors += [e for f in model.flags for e in flag_errors(model, f)]
    if errors:
        raise AssertionError(f"demo model is invalid: {errors}")
    return model


async def ensure_demo_site(state: ServerState) -> DemoSite:
    """Creates the demo site and its credentials once; afterwards returns the same ones."""
    storage = state.storage
    site = await storage.get_site(DEMO_SITE_CODE)
    if site is None:
        try:
            site = await storage.create_site(DEMO_SITE_CODE, encode_model(demo_model()), now_ms())
        except AlreadyExists:
            site = await storage.get_site(DEMO_SITE_CODE)
    assert site is not None
    saved = await storage.get_setting(_SECRET_SETTING)
    if saved is not None:
        client_id, _, secret = saved.partition(" ")
        credential = await storage.get_credential(client_id)
        if credential is not None and credential.site_id == site.id:
            return DemoSite(site.code, client_id, secret)
    created = await create_credential(state, site.id, site.code)
    await storage.set_setting(_SECRET_SETTING, f"{created['client_id']} {created['client_secret']}")
    return DemoSite(site.code, created["client_id"], created["client_secret"])


def snippet(demo: DemoSite, base_url: str) -> str:
    """Five lines of SDK code using the demo site."""
    return "\n".join(
        [
            "from kameleoon import KameleoonClientConfig, KameleoonClientFactory",
            f'config = KameleoonClientConfig("{demo.client_id}", "{demo.client_secret}", '
            f'network_domain="{base_url}")',
            f'client = KameleoonClientFactory.create("{demo.site_code}", config)',
            "client.wait_init()",
            'print(client.get_feature_variation_key("visitor-1", "new_checkout"))',
        ]
    )
