"""Pure parsing of tracking bodies and token requests (protocol.md §4, §5, Appendix A.5)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameleoon_server import _wire as w

# The captured 3.4.0 request body of protocol.md §5.8.
CAPTURED_BODY = "\n".join(
    [
        "nonce=84D1C857B8E9CBA4&eventType=staticData&deviceType=DESKTOP&visitorCode=visitor-1"
        "&userAgent=Mozilla%2F5.0%20(X11%3B%20Linux)%20TestUA%2F1.0",
        "nonce=9C5E2273F56E6E0F&eventType=staticData&browserIndex=0&browserVersion=120.5&visitorCode=visitor-1",
        "nonce=DCDDA996D359A4DB&eventType=staticData&country=France&region=%C3%8Ele-de-France&city=Paris"
        "&postalCode=75001&latitude=48.85&longitude=2.35&visitorCode=visitor-1",
        "nonce=67BE336F953E613D&eventType=staticData&os=LINUX&osIndex=3&visitorCode=visitor-1",
        "nonce=D1A0BDD67666D791&eventType=customData&index=0&valuesCountMap=%7B%22val%20one%22%3A1%2C%22v%262%3D"
        "%5Cu00fc%22%3A1%7D&overwrite=true&visitorCode=visitor-1",
        "nonce=110E0030C7F1280B&eventType=page&href=https%3A%2F%2Fex.com%2Fp%3Fa%3D1%26b%3D2&title=Title%20%C3%A9"
        "&referrersIndices=%5B1%2C3%5D&visitorCode=visitor-1",
        "nonce=2450CEBEEF6BAC16&eventType=conversion&goalId=32&revenue=10.5&negative=true&visitorCode=visitor-1",
        "nonce=3F3B9E5A4D3439B3&eventType=experiment&id=5001&variationId=7002&visitorCode=visitor-1",
        "nonce=F946BBE3ACC4EFE4&eventType=experiment&id=5002&variationId=7003&visitorCode=visitor-1",
    ]
)


def parse(body: str, max_lines: int = 1000) -> w.ParsedBody:
    return w.parse_events_body(body, site_id=7, now_ms=1000, max_lines=max_lines)


def test_captured_body_gives_one_row_per_line_with_indexed_fields() -> None:
    parsed = parse(CAPTURED_BODY)
    assert parsed.malformed == 0
    assert [r[4] for r in parsed.rows] == [6, 6, 6, 6, 4, 5, 3, 2, 2]
    conversion = parsed.rows[6]
    assert conversion[:6] == (7, "visitor-1", 0, "2450CEBEEF6BAC16", w.ET_CONVERSION, 1000)
    assert conversion[6:12] == (None, None, 32, 10.5, 1, None)
    assert parsed.rows[7][6:8] == (5001, 7002)
    assert parsed.rows[4][11] == 0
    assert [r[13] for r in parsed.rows] == CAPTURED_BODY.split("\n")


def test_browser_user_agent_is_not_a_bot_but_curl_marks_every_line_of_its_visitor() -> None:
    assert parse(CAPTURED_BODY).bots == 0
    body = (
        "nonce=A1&eventType=activity&visitorCode=v1&userAgent=curl%2F8.0\n"
        "nonce=A2&eventType=experiment&id=1&variationId=2&visitorCode=v1\n"
        "nonce=A3&eventType=activity&visitorCode=v2"
    )
    rows = parse(body).rows
    assert [r[12] for r in rows] == [1, 1, 0]


def test_malformed_lines_are_counted_and_skipped_without_losing_good_ones() -> None:
    body = "\n".join(
        [
            "garbage",
            "nonce=B1&eventType=experiment&id=x&variationId=2&visitorCode=v",
            "nonce=B2&eventType=conversion&goalId=3&visitorCode=v",
            "eventType=activity&visitorCode=v",
            "nonce=B3&eventType=activity",
            "nonce=B4&eventType=customData&index=1&valuesCountMap=%5B1%5D&visitorCode=v",
            "nonce=B5&visitorCode=v",
            "",
        ]
    )
    parsed = parse(body)
    assert parsed.malformed == 6
    assert [r[3] for r in parsed.rows] == ["B2"]
    assert parsed.rows[0][9] == 0.0  # revenue defaults to 0


def test_mapping_value_lines_and_3_22_additions_are_accepted() -> None:
    body = "\n".join(
        [
            "nonce=C1&eventType=experiment&id=5001&variationId=7002&mappingValue=user-42",
            "nonce=C2&eventType=geolocation&country=France&city=Paris&visitorCode=v22&userAgent=UA%2F22",
            "nonce=C3&eventType=conversion&goalId=5&revenue=1.5&negative=false"
            "&metadata=%7B%220%22%3A%5B%22m1%22%5D%7D&visitorCode=v22",
            "nonce=C4&eventType=customData&index=2&valuesCountMap=%7B%7D&overwrite=false&visitorCode=v22",
            "nonce=C5&eventType=staticData&visitNumber=3&timeSincePreviousVisit=1000&visitorCode=v22",
            "nonce=C6&eventType=targetingSegment&id=77&visitorCode=v22",
            "nonce=C7&eventType=futureThing&visitorCode=v22",
        ]
    )
    parsed = parse(body)
    assert parsed.malformed == 0
    assert parsed.rows[0][1:3] == ("user-42", 1)
    assert [r[4] for r in parsed.rows] == [2, 7, 3, 4, 6, 8, 0]
    assert parsed.rows[5][6] == 77
    assert parsed.unknown_types == 1


def test_mapping_identifier_custom_data_links_the_user_id_to_the_visitor() -> None:
    line = (
        "nonce=2C9551334378193A&eventType=customData&index=2&valuesCountMap=%7B%22user-42%22%3A1%7D"
        "&overwrite=true&mappingIdentifier=true&visitorCode=anon-1"
    )
    assert parse(line).links == [(7, "user-42", "anon-1", 1000)]
    assert parse(line.replace("visitorCode=anon-1", "mappingValue=user-42")).links == []


def test_percent_encoded_identity_and_nonce_are_decoded_and_plus_stays_a_plus() -> None:
    row = parse("nonce=N1&eventType=conversion&goalId=1&revenue=1e+2&visitorCode=rv%20x/y").rows[0]
    assert row[1] == "rv x/y"
    assert row[9] == 100.0


def test_too_many_lines_is_an_error_and_long_visitor_codes_are_rejected() -> None:
    with pytest.raises(ValueError, match="lines"):
        parse("a\nb\nc", max_lines=2)
    assert parse("nonce=L&eventType=activity&visitorCode=" + "v" * 256).malformed == 1


@given(st.text(max_size=300))
def test_parser_never_raises_on_arbitrary_text(body: str) -> None:
    parsed = parse(body)
    assert parsed.malformed + len(parsed.rows) <= body.count("\n") + 1


def test_token_request_from_3_4_0_form_body_decodes_percent_escapes() -> None:
    body = "grant_type=client_credentials&client_id=my-client-id&client_secret=my%20secret%2F%2B%3D"
    assert w.parse_token_request(body, None) == w.ClientCredentials("my-client-id", "my secret/+=")


def test_token_request_from_3_22_2_basic_header() -> None:
    header = "Basic bXktY2xpZW50LWlkOm15IHNlY3JldA=="
    assert w.parse_token_request("grant_type=client_credentials", header) == w.ClientCredentials(
        "my-client-id", "my secret"
    )


@pytest.mark.parametrize(
    ("body", "header"),
    [
        ("grant_type=password&client_id=a&client_secret=b", None),
        ("grant_type=client_credentials&client_id=a", None),
        ("grant_type=client_credentials", "Basic !!!"),
        ("grant_type=client_credentials", "Basic " + base64.b64encode(b"no-colon").decode()),
    ],
)
def test_bad_token_requests_are_rejected(body: str, header: str | None) -> None:
    with pytest.raises(ValueError):
        w.parse_token_request(body, header)


def test_bearer_token_extraction() -> None:
    assert w.bearer_token("Bearer abc") == "abc"
    assert w.bearer_token("bearer  abc ") == "abc"
    assert w.bearer_token("Basic abc") is None
    assert w.bearer_token(None) is None


_ids = st.integers(min_value=-(10**17), max_value=10**17)
_fast_lines = st.one_of(
    st.builds(lambda n, a, b: f"eventType=experiment&id={a}&variationId={b}", st.just(0), _ids, _ids),
    st.builds(
        lambda g, r, neg: f"eventType=conversion&goalId={g}&revenue={r}&negative={neg}",
        _ids,
        st.sampled_from(["0", "10.5", "-3.25", "12"]),
        st.sampled_from(["true", "false"]),
    ),
    st.just("eventType=activity"),
)


@given(
    st.lists(
        st.tuples(
            _fast_lines,
            st.sampled_from(["visitorCode=a", "visitorCode=b", "mappingValue=u"]),
            st.sampled_from(["", "&userAgent=curl%2F8.0", "&userAgent=Mozilla%2F5.0"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_whole_body_fast_path_gives_the_same_rows_as_the_general_path(
    parts: list[tuple[str, str, str]],
) -> None:
    lines = [f"nonce=N{i:04d}&{kind}&{who}{ua}" for i, (kind, who, ua) in enumerate(parts)]
    fast = w._parse_fast_body("\n".join(lines), 7, 1000)
    assert fast is not None
    general = parse("\n".join([*lines, "not a line"]))  # one bad line forces the line-by-line path
    assert fast.rows == general.rows
    assert fast.bots == general.bots


def test_a_body_with_crlf_line_ends_gives_the_rows_of_the_lf_body() -> None:
    """Carriage returns end lines like newlines: they never become part of a visitor code or a
    user agent, whichever path parses the body."""
    body = (
        "nonce=N1&eventType=experiment&id=5001&variationId=7002&visitorCode=v1&userAgent=Mozilla%2F5.0\n"
        "nonce=N2&eventType=activity&visitorCode=crlf-v"
    )

    def rows(parsed: w.FastBody | w.ParsedBody) -> list[w.Row]:
        return parsed.rows() if isinstance(parsed, w.FastBody) else parsed.rows

    expected = rows(w.parse_for_storage(body.encode(), 7, 1000, 1000))
    crlf = rows(w.parse_for_storage(body.replace("\n", "\r\n").encode(), 7, 1000, 1000))
    assert [row[1] for row in crlf] == ["v1", "crlf-v"]
    assert crlf == expected


def test_fast_bodies_stay_regex_groups_for_storage_and_give_the_same_rows() -> None:
    body = (
        "nonce=N1&eventType=experiment&id=5001&variationId=7002&visitorCode=v1&userAgent=Mozilla%2F5.0\n"
        "nonce=N2&eventType=conversion&goalId=32&revenue=10.5&negative=true&visitorCode=v1\n"
        "nonce=N3&eventType=activity&mappingValue=u1"
    )
    fast = w.parse_for_storage(body.encode(), 7, 1000, 1000)
    assert isinstance(fast, w.FastBody)
    assert fast.rows() == parse(body).rows
    assert fast.summary() == w.BodySummary(received=3)


@pytest.mark.parametrize(
    ("user_agent", "robot"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True),
        ("AdsBot-Google (+http://www.google.com/adsbot.html)", True),
        ("TelegramBot (like TwitterBot)", True),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0)", True),
        ("curl/8.0.1", True),
        ("", True),
        # a phone brand whose name ends in "bot"
        ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko)"
         " Chrome/120.0.0.0 Mobile Safari/537.36", False),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
         " Chrome/120.0.0.0 Safari/537.36", False),
    ],
)  # fmt: skip
def test_robot_user_agents(user_agent: str, robot: bool) -> None:
    assert w.is_bot_user_agent(user_agent) is robot


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e999", "1e200", "-1.5e154", "1000000000000000.2"])
def test_a_revenue_that_is_not_a_finite_number_or_beyond_the_bound_is_stored_as_unknown(raw: str) -> None:
    """The conversion counts; its revenue, which no total or mean could use (a square beyond
    1.34e154 overflows a double), is unknown (NULL)."""
    parsed = parse(f"nonce=C1&eventType=conversion&goalId=5&revenue={raw}&negative=false&visitorCode=v")
    assert len(parsed.rows) == 1 and parsed.rows[0][9] is None


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("1e15", 1e15), ("-1e15", -1e15), ("999999999999999.999999999999999", 1e15), ("12.5", 12.5)],
)
def test_a_revenue_up_to_the_bound_is_stored_on_every_path(raw: str, stored: float) -> None:
    """The largest fast-path revenue rounds to the bound itself, which is kept."""
    line = f"nonce=C1&eventType=conversion&goalId=5&revenue={raw}&negative=false&visitorCode=v"
    assert w.MAX_REVENUE == 1e15
    assert parse(line).rows[0][9] == stored
    parsed = w.parse_for_storage(line.encode(), 7, 1000, 1000)
    rows = parsed.rows() if isinstance(parsed, w.FastBody) else parsed.rows
    assert rows[0][9] == stored


def test_bodies_with_robots_or_other_layouts_are_parsed_fully_for_storage() -> None:
    robot = "nonce=N1&eventType=activity&visitorCode=v1&userAgent=curl%2F8.0"
    other = "nonce=N1&eventType=page&href=x&visitorCode=v1"
    for body in (robot, other):
        parsed = w.parse_for_storage(body.encode(), 7, 1000, 1000)
        assert isinstance(parsed, w.ParsedBody)
        assert parsed.rows == parse(body).rows
    assert w.parse_for_storage(robot.encode(), 7, 1000, 1000).summary().bots == 1
    with pytest.raises(w.TooManyLines):
        w.parse_for_storage(b"a\nb\nc", 7, 1000, 2)


def test_a_user_agent_that_is_not_valid_percent_encoding_rejects_only_its_line() -> None:
    body = (
        "nonce=N1&eventType=activity&visitorCode=v1&userAgent=%FF\nnonce=N2&eventType=activity&visitorCode=v2"
    )
    for parsed in (parse(body), w.parse_for_storage(body.encode(), 7, 1000, 1000)):
        assert isinstance(parsed, w.ParsedBody)
        assert [r[3] for r in parsed.rows] == ["N2"]
        assert parsed.malformed == 1


def test_invalid_utf8_is_flagged() -> None:
    parsed = w.parse_events_bytes(b"nonce=N1&eventType=page&href=\xff&visitorCode=v1", 7, 1000, 10)
    assert parsed.invalid_utf8
    assert parsed.summary().invalid_utf8


def test_lines_that_are_not_utf8_are_malformed_and_the_others_stored() -> None:
    """Decoded with replacement characters, the nonces \\xff\\xfe and \\xfe\\xff would be the
    same and one line would be dropped as a duplicate: such lines are refused instead."""
    body = (
        b"nonce=\xff\xfe&eventType=activity&visitorCode=v1\n"
        b"nonce=\xfe\xff&eventType=activity&visitorCode=v1\n"
        b"nonce=OK&eventType=activity&visitorCode=v1"
    )
    for parsed in (w.parse_events_bytes(body, 7, 1000, 10), w.parse_for_storage(body, 7, 1000, 10)):
        assert isinstance(parsed, w.ParsedBody)
        assert [row[3] for row in parsed.rows] == ["OK"]
        assert parsed.malformed == 2
    with pytest.raises(w.TooManyLines):
        w.parse_events_bytes(body, 7, 1000, 2)
