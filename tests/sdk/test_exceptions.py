"""The exception hierarchy and exact messages (evaluation spec §2.6, §6.3)."""

from __future__ import annotations

import pytest

from kameleoon import exceptions as ex

HIERARCHY = {
    "KameleoonError": "Exception",
    "ConfigException": "KameleoonError",
    "ConfigFileNotFound": "ConfigException",
    "ConfigCredentialsInvalid": "ConfigException",
    "SiteCodeIsEmpty": "KameleoonError",
    "NotFoundError": "KameleoonError",
    "FeatureNotFound": "NotFoundError",
    "FeatureVariationNotFound": "NotFoundError",
    "FeatureVariableNotFound": "NotFoundError",
    "FeatureError": "KameleoonError",
    "FeatureEnvironmentDisabled": "FeatureError",
    "VisitorCodeInvalid": "KameleoonError",
}


@pytest.mark.parametrize(("name", "parent"), sorted(HIERARCHY.items()))
def test_direct_parent(name: str, parent: str) -> None:
    """Each exception's direct base class is the one of the documented tree."""
    cls = getattr(ex, name)
    assert cls.__bases__[0].__name__ == parent
    assert len(cls.__bases__) == 1


def test_exported_names_are_exactly_the_tree() -> None:
    """``kameleoon.exceptions.__all__`` lists the twelve documented exceptions, nothing else."""
    assert sorted(ex.__all__) == sorted(HIERARCHY)


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (ex.KameleoonError("boom"), "Kameleoon error: boom"),
        (ex.ConfigException("bad"), "Kameleoon error: bad"),
        (ex.ConfigFileNotFound("nope"), "Kameleoon error: nope"),
        (
            ex.ConfigCredentialsInvalid("Client ID is not specified"),
            "Kameleoon error: Client ID is not specified",
        ),
        (ex.SiteCodeIsEmpty("empty"), "Kameleoon error: empty"),
        (ex.NotFoundError("Thing"), "Kameleoon error: Thing not found."),
        (ex.FeatureNotFound("k"), "Kameleoon error: Feature flag Id: k not found."),
        (ex.FeatureVariationNotFound("v"), "Kameleoon error: Variation v not found."),
        (ex.FeatureVariableNotFound("v"), "Kameleoon error: Feature variable v not found."),
        (ex.FeatureError("oops"), "Kameleoon error: Feature error: oops"),
        (
            ex.FeatureEnvironmentDisabled("k", "staging"),
            "Kameleoon error: Feature error: Feature 'k' is disabled for 'staging' environment",
        ),
        (
            ex.FeatureEnvironmentDisabled("k"),
            "Kameleoon error: Feature error: Feature 'k' is disabled for default environment",
        ),
        (
            ex.VisitorCodeInvalid("empty visitor code"),
            "Kameleoon error: Visitor code not valid: empty visitor code",
        ),
    ],
)
def test_message(exc: Exception, message: str) -> None:
    """Every message has the documented prefix and wording."""
    assert str(exc) == message
    assert exc.args == (message,)


def test_feature_not_found_with_non_string_key() -> None:
    """A non-string feature key is printed with ``str()`` in the message."""
    assert str(ex.FeatureNotFound(42)) == "Kameleoon error: Feature flag Id: 42 not found."


def test_environment_disabled_keeps_its_arguments() -> None:
    """``FeatureEnvironmentDisabled`` exposes the feature key and the environment."""
    error = ex.FeatureEnvironmentDisabled("flag", "prod")
    assert (error.feature_key, error.environment) == ("flag", "prod")


@pytest.mark.parametrize("name", sorted(HIERARCHY))
def test_every_exception_is_a_kameleoon_error_and_catchable(name: str) -> None:
    """Every exception can be raised without arguments and caught as ``KameleoonError``."""
    with pytest.raises(ex.KameleoonError) as info:
        raise getattr(ex, name)()
    assert str(info.value).startswith("Kameleoon error: ")
