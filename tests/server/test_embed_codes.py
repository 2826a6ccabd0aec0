"""Embed codes per ESP dialect: merged the way each ESP merges, then fetched like an email client.

Each dialect's snippet is filled in as its ESP would fill it for one recipient, and the image and
click URLs of the result are requested from the app: the image must be that recipient's (a
variant only they match), the click must go where that image links. The Liquid dialects are
rendered by the real python-liquid engine; where an ESP's syntax is not plain Liquid (Braze's
``${…}``, Klaviyo's Django filters) a small, documented shim stands in for that ESP's part.
Mailchimp and AMPscript are mimicked by small substitutions written here.
"""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mjml
import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from models.recipients.upserts import RECIPIENT_ID_PATTERN
from server.embed_codes import (
    DIALECTS,
    EMPTY_ALT_WARNING,
    EmbedTarget,
    MergeParam,
    dialect,
    embed_code,
    literal,
)
from server.services import Services
from server.tokens import TokenSigner
from tests.conftest import SIGNING_KEY
from tests.esp_merges import (
    ENCODING_DIALECTS,
    MERGE_CASES,
    MERGE_IDS,
    MERGES,
    Merge,
    braze,
    elements,
    image_and_link,
    mailchimp,
)
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    corner_color,
    decode_image,
    error_pointers,
    hex_rgb,
    landing,
    problem,
    store_block,
    store_recipient,
    variant,
)

GOLD = "#0B7A75"
GOLD_URL = "https://shop.example/gold"
PUBLIC = "http://blanco.test"
TOKEN_FIELD = "bl_token"
ATTACKER_VALUE = 'x" onerror="alert(1)"><script>alert(2)</script>&dpr=9'


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def hero(services: Services) -> None:
    """Block ``daily/hero`` (300×100) whose gold variant only Anna matches; Bram has no tier."""
    store_block(
        services,
        [variant("gold", {"attr": "tier", "eq": "gold"}, background=GOLD, target_url=GOLD_URL)],
        name="Hero",
        fallback={
            "content": {
                "type": "banner",
                "background": FALLBACK_BACKGROUND,
                "lines": [{"text": "Our offers"}],
            },
            "target_url": FALLBACK_URL,
            "alt": "Our offers",
        },
    )
    store_recipient(services, "anna", {"first_name": "Anna", "tier": "gold"})
    store_recipient(services, "bram", {"first_name": "Bram"})


def embed(api: AdminApi, esp: str, **query: str) -> dict[str, Any]:
    """The embed answer for block daily/hero."""
    response = api.get("/campaigns/daily/blocks/hero/embed", query_string={"esp": esp, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


# --- each dialect, end to end ---------------------------------------------------------------------


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize(("esp", "merge"), MERGE_CASES, ids=MERGE_IDS)
def test_merged_embed_shows_and_links_the_recipients_content(
    api: AdminApi, client: FlaskClient, services: Services, esp: str, merge: Merge
) -> None:
    answer = embed(api, esp)
    # Anna's token finds her profile and the variant only she matches; Bram's finds his
    # profile, which matches nothing (a verified recipient, unlike a broken token).
    for recipient, color, target, fallback in [
        ("anna", GOLD, GOLD_URL, None),
        ("bram", FALLBACK_BACKGROUND, FALLBACK_URL, "no variant matched"),
    ]:
        html = merge(answer["html"], {TOKEN_FIELD: services.signer.sign(recipient)})
        image_url, click_url = image_and_link(html)
        assert image_url.startswith(f"{PUBLIC}/i/daily/hero.png?r=")
        assert click_url.startswith(f"{PUBLIC}/c/daily/hero?r=")
        image = client.get(image_url)
        assert image.status_code == 200
        assert image.headers.get("X-Blanco-Fallback") == fallback, recipient
        assert corner_color(image.data) == hex_rgb(color), recipient
        assert decode_image(image.data).size == (600, 200)  # dpr=2 of a 300×100 block
        click = client.get(click_url)
        assert click.status_code == 302
        assert landing(click) == target, recipient


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize("esp", list(DIALECTS))
def test_image_and_link_carry_the_same_merge_parameters(api: AdminApi, esp: str) -> None:
    answer = embed(api, esp)
    image_url, click_url = image_and_link(answer["html"])
    assert (image_url, click_url) == (answer["image_url"], answer["click_url"])
    image_query, click_query = urlsplit(image_url).query, urlsplit(click_url).query
    assert image_query == f"{click_query}&dpr=2"
    tag = DIALECTS[esp].merge_tag(TOKEN_FIELD)
    assert click_query == f"r={tag}"
    assert answer["html"].count(tag) == 2  # the tag once per URL, nowhere else
    assert answer["fields"] == {"r": TOKEN_FIELD}
    assert answer["url_encoding"] == DIALECTS[esp].url_encoding


@pytest.mark.usefixtures("hero")
def test_snippet_has_explicit_1x_size_alt_and_block_style(api: AdminApi) -> None:
    answer = embed(api, "mailchimp")
    assert (answer["esp"], answer["width"], answer["height"], answer["alt"]) == (
        "mailchimp",
        300,
        100,
        "Our offers",
    )
    (a_tag, a_attrs), (img_tag, img_attrs) = elements(answer["html"])
    assert (a_tag, set(a_attrs)) == ("a", {"href"})
    assert img_tag == "img"
    assert (img_attrs["width"], img_attrs["height"], img_attrs["alt"]) == (
        "300",
        "100",
        "Our offers",
    )
    style = img_attrs["style"] or ""
    assert style.startswith("display:block;border:0;")
    assert "max-width:300px" in style
    assert answer["html"] == (
        f'<a href="{PUBLIC}/c/daily/hero?r=*|BL_TOKEN|*">'
        f'<img src="{PUBLIC}/i/daily/hero.png?r=*|BL_TOKEN|*&amp;dpr=2" width="300" '
        'height="100" alt="Our offers" style="display:block;border:0;outline:none;'
        'text-decoration:none;width:100%;max-width:300px;height:auto"></a>'
    )


@pytest.mark.usefixtures("hero")
def test_token_field_and_alt_come_from_the_request(api: AdminApi, services: Services) -> None:
    answer = embed(api, "braze", token_field="bl_tok", alt='Gold "deals" & <more>')
    assert "{{custom_attribute.${bl_tok}|url_param_escape}}" in answer["html"]
    assert answer["fields"] == {"r": "bl_tok"}
    assert answer["alt"] == 'Gold "deals" & <more>'
    assert 'alt="Gold &quot;deals&quot; &amp; &lt;more&gt;"' in answer["html"]
    merged = braze(answer["html"], {"bl_tok": services.signer.sign("anna")})
    (img,) = [attrs for tag, attrs in elements(merged) if tag == "img"]
    assert img["alt"] == 'Gold "deals" & <more>'


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize(("esp", "merge"), MERGE_CASES, ids=MERGE_IDS)
def test_alt_text_that_looks_like_a_merge_tag_is_shown_not_evaluated(
    api: AdminApi, services: Services, esp: str, merge: Merge
) -> None:
    alt = "50%% off *|FNAME|* {{ first_name }} {% if x %} ${first_name} | done"
    answer = embed(api, esp, alt=alt)
    merged = merge(answer["html"], {TOKEN_FIELD: services.signer.sign("anna")})
    (img,) = [attrs for tag, attrs in elements(merged) if tag == "img"]
    assert img["alt"] == alt


# --- what a hostile or broken field value can and cannot do --------------------------------------


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize(
    ("esp", "merge"),
    [case for case in MERGE_CASES if case[0] in ENCODING_DIALECTS],
    ids=[i for i, case in zip(MERGE_IDS, MERGE_CASES, strict=True) if case[0] in ENCODING_DIALECTS],
)
def test_an_encoding_dialect_keeps_a_hostile_value_inside_the_parameter(
    api: AdminApi, client: FlaskClient, esp: str, merge: Merge
) -> None:
    merged = merge(embed(api, esp)["html"], {TOKEN_FIELD: ATTACKER_VALUE})
    found = elements(merged)
    assert [tag for tag, _ in found] == ["a", "img"]
    assert set(found[0][1]) == {"href"}
    assert set(found[1][1]) == {"src", "width", "height", "alt", "style"}
    image_url, click_url = image_and_link(merged)
    assert parse_qs(urlsplit(click_url).query) == {"r": [ATTACKER_VALUE]}
    assert parse_qs(urlsplit(image_url).query) == {"r": [ATTACKER_VALUE], "dpr": ["2"]}
    image = client.get(image_url)  # a forged token: the block's fallback, never an error
    assert image.status_code == 200
    assert image.headers["X-Blanco-Fallback"]
    assert corner_color(image.data) == hex_rgb(FALLBACK_BACKGROUND)
    assert landing(client.get(click_url)) == FALLBACK_URL


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize("esp", ["mailchimp", "hubspot", "generic"])
def test_without_an_encoder_the_field_must_hold_a_blanco_token(api: AdminApi, esp: str) -> None:
    # These ESPs insert the value as stored (generic: in Liquid), so a value with a quote would
    # end the attribute: the field is safe because it only ever holds Blanco tokens, whose
    # alphabet the next test pins down.
    merged = MERGES[esp][0](embed(api, esp)["html"], {TOKEN_FIELD: ATTACKER_VALUE})
    assert [tag for tag, _ in elements(merged)] != ["a", "img"]


SAFE_IN_A_QUERY_VALUE = set(string.ascii_letters + string.digits + "-_.:@")


@given(st.from_regex(RECIPIENT_ID_PATTERN, fullmatch=True))
def test_tokens_need_no_url_or_html_escaping(recipient_id: str) -> None:
    token = TokenSigner([SIGNING_KEY]).sign(recipient_id)
    assert set(token) <= SAFE_IN_A_QUERY_VALUE
    assert parse_qs(f"r={token}") == {"r": [token]}
    assert literal(token) == token


# --- MJML -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize("esp", list(DIALECTS))
def test_mjml_compiles_to_the_same_image_and_link(api: AdminApi, esp: str) -> None:
    answer = embed(api, esp)
    assert answer["mjml"].startswith("<mj-image ")
    compiled = mjml.mjml2html(
        "<mjml><mj-body><mj-section><mj-column>"
        f"{answer['mjml']}"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    assert image_and_link(compiled) == image_and_link(answer["html"])
    (img,) = [attrs for tag, attrs in elements(compiled) if tag == "img"]
    assert (img["width"], img["alt"]) == ("300", "Our offers")


@pytest.mark.usefixtures("hero")
def test_merged_mjml_output_still_shows_the_recipients_content(
    api: AdminApi, client: FlaskClient, services: Services
) -> None:
    answer = embed(api, "braze")
    compiled = mjml.mjml2html(
        f"<mjml><mj-body><mj-section><mj-column>{answer['mjml']}</mj-column></mj-section>"
        "</mj-body></mjml>"
    )
    image_url, click_url = image_and_link(
        braze(compiled, {TOKEN_FIELD: services.signer.sign("anna")})
    )
    assert corner_color(client.get(image_url).data) == hex_rgb(GOLD)
    assert landing(client.get(click_url)) == GOLD_URL


# --- the API's errors and the module's guards ----------------------------------------------------


@pytest.mark.usefixtures("hero")
def test_unknown_esp_points_at_esp(api: AdminApi) -> None:
    response = api.get("/campaigns/daily/blocks/hero/embed?esp=sendgrid")
    assert error_pointers(response) == [("/esp", "esp")]
    assert "mailchimp" in response.get_json()["errors"][0]["detail"]


@pytest.mark.usefixtures("hero")
@pytest.mark.parametrize("token_field", ["", "blanco token", "x'y", "1abc", "a" * 65, "{{x}}"])
def test_invalid_token_field_points_at_it(api: AdminApi, token_field: str) -> None:
    response = api.get(
        "/campaigns/daily/blocks/hero/embed",
        query_string={"esp": "braze", "token_field": token_field},
    )
    assert error_pointers(response) == [("/token_field", "token_field")]


@pytest.mark.usefixtures("hero")
def test_too_long_alt_points_at_it(api: AdminApi) -> None:
    response = api.get("/campaigns/daily/blocks/hero/embed", query_string={"alt": "x" * 301})
    assert error_pointers(response) == [("/alt", "alt")]


@pytest.mark.usefixtures("hero")
def test_esp_defaults_to_generic(api: AdminApi) -> None:
    response = api.get("/campaigns/daily/blocks/hero/embed")
    assert response.get_json()["esp"] == "generic"


@pytest.mark.usefixtures("hero")
def test_unknown_campaign_or_block_is_404(api: AdminApi) -> None:
    problem(api.get("/campaigns/weekly/blocks/hero/embed?esp=braze"), 404)
    problem(api.get("/campaigns/daily/blocks/nope/embed?esp=braze"), 404)


def test_embed_needs_an_admin_key(client: FlaskClient, ingest_headers: dict[str, str]) -> None:
    problem(client.get("/api/v1/campaigns/daily/blocks/hero/embed"), 401)
    problem(AdminApi(client, ingest_headers).get("/campaigns/daily/blocks/hero/embed"), 403)


@pytest.mark.usefixtures("hero")
def test_answer_matches_its_openapi_schema(api: AdminApi, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/campaigns/{campaign_id}/blocks/{block_id}/embed"]["get"]
    query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert query == {"esp", "token_field", "alt", "key_field"}
    schema = document["components"]["schemas"]["EmbedAnswer"]
    body = embed(api, "klaviyo")
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert {"esp", "html", "mjml", "image_url", "click_url", "width", "height"} <= set(body)


@pytest.mark.parametrize("esp", list(DIALECTS))
@pytest.mark.parametrize("name", ["bl_token", "X", "a" * 64, "Send_ID_2"])
def test_merge_tags_never_break_an_attribute(esp: str, name: str) -> None:
    tag = dialect(esp).merge_tag(name)
    assert not set(tag) & set('"<>&\n\r\t ')
    assert name in tag or name.upper() in tag


def test_a_target_with_two_merge_parameters_pairs_them_in_order() -> None:
    # A newsletter slot adds the send id (``s``) after the token; both URLs carry both.
    slot = EmbedTarget(
        image_path="/s/daily/top.png",
        click_path="/s/daily/top",
        width=600,
        height=200,
        alt="Today",
        params=(MergeParam("r", "bl_token"), MergeParam("s", "bl_send")),
    )
    code = embed_code(slot, "mailchimp", PUBLIC)
    assert code.image_url == (f"{PUBLIC}/s/daily/top.png?r=*|BL_TOKEN|*&s=*|BL_SEND|*&dpr=2")
    assert code.click_url == f"{PUBLIC}/s/daily/top?r=*|BL_TOKEN|*&s=*|BL_SEND|*"
    merged = mailchimp(code.html, {"bl_token": "anna.sig", "bl_send": "2026-11-23"})
    image_url, click_url = image_and_link(merged)
    assert parse_qs(urlsplit(image_url).query) == {
        "r": ["anna.sig"],
        "s": ["2026-11-23"],
        "dpr": ["2"],
    }
    assert parse_qs(urlsplit(click_url).query) == {"r": ["anna.sig"], "s": ["2026-11-23"]}


@pytest.mark.parametrize("esp", sorted(DIALECTS))
@pytest.mark.usefixtures("hero")
def test_merge_tags_contain_no_spaces(api: AdminApi, esp: str) -> None:
    for field in (TOKEN_FIELD, "uniqid", "my_token", "Blanco_Send_Id"):
        tag = DIALECTS[esp].merge_tag(field)
        assert not any(character.isspace() for character in tag), (esp, field, tag)
    answer = embed(api, esp)
    for url in image_and_link(answer["html"]):
        assert not any(character.isspace() for character in url), url


@pytest.mark.parametrize("alt", ["", "   "])
def test_a_linked_image_without_alt_text_carries_a_warning(alt: str) -> None:
    target = EmbedTarget("/i/daily/hero.png", "/c/daily/hero", 300, 100, alt, ())
    code = embed_code(target, "generic", PUBLIC)
    assert f'alt="{alt}"' in code.html
    assert code.warnings == (EMPTY_ALT_WARNING,)
    assert code.as_dict()["warnings"] == [EMPTY_ALT_WARNING]
    assert 'alt=""' in EMPTY_ALT_WARNING
    named = embed_code(replace(target, alt="Spring sale"), "generic", PUBLIC)
    assert (named.warnings, named.as_dict()["warnings"]) == ((), [])


@pytest.mark.usefixtures("hero")
def test_the_api_answer_carries_the_empty_alt_warning(api: AdminApi) -> None:
    response = api.get("/campaigns/daily/blocks/hero/embed", query_string={"alt": " "})
    assert response.status_code == 200
    assert response.get_json()["warnings"] == [EMPTY_ALT_WARNING]
    named = api.get("/campaigns/daily/blocks/hero/embed", query_string={"alt": "Spring sale"})
    assert named.get_json()["warnings"] == []
