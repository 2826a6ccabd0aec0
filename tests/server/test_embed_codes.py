"""Embed codes per ESP dialect: merged the way each ESP merges, then fetched like an email client.

Each dialect's snippet is filled in as its ESP would fill it for one recipient, and the image and
click URLs of the result are requested from the app: the image must be that recipient's (a
variant only they match), the click must go where that image links. The Liquid dialects are
rendered by the real python-liquid engine; where an ESP's syntax is not plain Liquid (Braze's
``${…}``, Klaviyo's Django filters) a small, documented shim stands in for that ESP's part.
Mailchimp and AMPscript are mimicked by small substitutions written here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
import liquid
import mjml
import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from models.recipients import RECIPIENT_ID_PATTERN
from server.embed_codes import (
    DIALECTS,
    EmbedTarget,
    MergeParam,
    dialect,
    embed_code,
    literal,
)
from server.services import Services
from server.tokens import TokenSigner
from tests.conftest import SIGNING_KEY
from tests.factories import (
    FALLBACK_BACKGROUND,
    FALLBACK_URL,
    AdminApi,
    corner_color,
    decode_image,
    error_pointers,
    hex_rgb,
    problem,
    store_block,
    store_recipient,
    variant,
)

GOLD = "#0B7A75"
GOLD_URL = "https://shop.example/gold"
PUBLIC = "http://blanco.test"
TOKEN_FIELD = "blanco_token"
ATTACKER_VALUE = 'x" onerror="alert(1)"><script>alert(2)</script>&dpr=9'


# --- how each ESP fills in its merge tags -------------------------------------------------------


def mailchimp(html: str, fields: dict[str, str]) -> str:
    """Mailchimp: ``*|TAG|*`` becomes the stored value as it is (tags are capitals)."""
    values = {name.upper(): value for name, value in fields.items()}
    return re.sub(r"\*\|([A-Z0-9_]+)\|\*", lambda m: values[m.group(1)], html)


def ampscript_urlencode(text: str, all_chars: bool = False, all_strings: bool = False) -> str:
    """AMPscript ``URLEncode``: with both flags, the whole value is made URL-safe; without them
    only spaces (in a URL's parameters) become %20. Salesforce does not list the exact character
    set; this encodes everything outside RFC 3986's unreserved characters."""
    if all_chars and all_strings:
        return quote(text, safe="")
    return text.replace(" ", "%20")


class AmpScript:
    """Just enough AMPscript: ``%%[ SET @v = expr ]%%`` blocks, ``%%=expr=%%`` inline output and
    ``%%field%%`` personalization strings; expressions are string and number literals,
    ``@variables`` and the functions ``AttributeValue``, ``URLEncode`` and ``v``."""

    TOKEN = re.compile(r"\s*(?:(@\w+)|'([^']*)'|\"([^\"]*)\"|(\d+)|(\w+)|([(),=]))")

    def __init__(self, attributes: dict[str, str]) -> None:
        self.attributes = attributes
        self.variables: dict[str, str] = {}

    def render(self, html: str) -> str:
        html = re.sub(r"%%\[(.*?)\]%%", lambda m: self._block(m.group(1)), html, flags=re.S)
        html = re.sub(r"%%=(.*?)=%%", lambda m: self.evaluate(m.group(1)), html, flags=re.S)
        return re.sub(r"%%(\w+)%%", lambda m: self.attributes[m.group(1)], html)

    def _block(self, code: str) -> str:
        for statement in filter(None, (s.strip() for s in code.splitlines())):
            match = re.fullmatch(r"(?i:set)\s+(@\w+)\s*=\s*(.+)", statement)
            assert match, statement
            self.variables[match.group(1).lower()] = self.evaluate(match.group(2))
        return ""

    def evaluate(self, expression: str) -> str:
        tokens = [m for m in self.TOKEN.finditer(expression) if m.group(0).strip()]
        assert "".join(m.group(0) for m in tokens).strip() == expression.strip(), expression
        value, rest = self._expression(tokens)
        assert not rest, expression
        return value

    def _expression(self, tokens: list[re.Match[str]]) -> tuple[str, list[re.Match[str]]]:
        token, rest = tokens[0], tokens[1:]
        variable, single, double, number, name, _ = token.groups()
        if variable:
            return self.variables[variable.lower()], rest
        if single is not None or double is not None:
            return single if single is not None else double, rest
        if number:
            return number, rest
        assert name, token.group(0)
        assert rest, token.group(0)
        assert rest[0].group(6) == "(", token.group(0)
        arguments: list[str] = []
        rest = rest[1:]
        while rest[0].group(6) != ")":
            argument, rest = self._expression(rest)
            arguments.append(argument)
            if rest[0].group(6) == ",":
                rest = rest[1:]
        return self._call(name.lower(), arguments), rest[1:]

    def _call(self, name: str, arguments: list[str]) -> str:
        if name == "attributevalue":
            return self.attributes[arguments[0]]
        if name == "v":
            return arguments[0]
        if name == "urlencode":
            flags = [a in ("1", "true") for a in arguments[1:]] + [False, False]
            return ampscript_urlencode(arguments[0], flags[0], flags[1])
        raise AssertionError(f"no AMPscript function {name} here")


def salesforce(html: str, fields: dict[str, str]) -> str:
    """Salesforce Marketing Cloud evaluates the AMPscript against the subscriber's attributes."""
    return AmpScript(fields).render(html)


def shopify_url_escape(value: Any, also: str = "") -> str:
    """Shopify Liquid's ``url_escape`` (Ruby's URI escape: reserved characters stay); Braze
    documents ``url_param_escape`` as the same with ``&`` escaped too."""
    kept = "-_.!~*'();/?:@&=+$,[]"
    return quote(str(value), safe="".join(c for c in kept if c not in also))


def braze(html: str, fields: dict[str, str]) -> str:
    """Braze: Liquid where ``${name}`` names an attribute; ``{{custom_attribute.${x}}}`` reads a
    custom attribute. python-liquid has no ``${…}``, so it is rewritten to a plain name first,
    and Braze's URL filters are registered."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    environment.filters["url_escape"] = shopify_url_escape
    environment.filters["url_param_escape"] = lambda value: shopify_url_escape(value, also="&")
    template = re.sub(r"\$\{(\w+)\}", r"\1", html)
    return environment.from_string(template).render(custom_attribute=fields)


def klaviyo(html: str, fields: dict[str, str]) -> str:
    """Klaviyo: Django-style templates (output HTML-escaped) with ``person|lookup:'name'`` for a
    profile property and Django's ``urlencode`` (``/`` kept). Both are registered as filters on
    python-liquid, which parses Klaviyo's ``filter:'argument'`` syntax."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined, autoescape=True)
    environment.filters["lookup"] = lambda person, name: person.get(name, "")
    environment.filters["urlencode"] = lambda value, safe="/": quote(str(value), safe=safe)
    return environment.from_string(html).render(person=fields)


def hubspot_liquid(html: str, fields: dict[str, str]) -> str:
    """HubSpot's ``{{contact.name}}`` parses as plain Liquid."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    return environment.from_string(html).render(contact=fields)


def hubspot_hubl(html: str, fields: dict[str, str]) -> str:
    """HubL is Jinja-based (Jinjava): Jinja2, inserting contact tokens as they are."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return environment.from_string(html).render(contact=fields)


def generic_liquid(html: str, fields: dict[str, str]) -> str:
    """The generic form in Liquid."""
    environment = liquid.Environment(undefined=liquid.StrictUndefined)
    return environment.from_string(html).render(**fields)


def generic_jinja(html: str, fields: dict[str, str]) -> str:
    """The generic form in Jinja2 with HTML autoescaping."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    return environment.from_string(html).render(**fields)


Merge = Callable[[str, dict[str, str]], str]
MERGES: dict[str, list[Merge]] = {
    "mailchimp": [mailchimp],
    "salesforce": [salesforce],
    "braze": [braze],
    "klaviyo": [klaviyo],
    "hubspot": [hubspot_liquid, hubspot_hubl],
    "generic": [generic_liquid, generic_jinja],
}
MERGE_CASES = [(esp, merge) for esp, merges in MERGES.items() for merge in merges]
MERGE_IDS = [f"{esp}-{merge.__name__}" for esp, merge in MERGE_CASES]
ENCODING_DIALECTS = ("salesforce", "braze", "klaviyo")


# --- reading the merged HTML like an email client -----------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes (values unescaped, as an email client reads them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The start tags of ``html``."""
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.tags


def image_and_link(html: str) -> tuple[str, str]:
    """The image URL and the link URL of an ``<a><img></a>`` (or compiled MJML)."""
    found = elements(html)
    hrefs = [a.get("href") for tag, a in found if tag == "a"]
    srcs = [a.get("src") for tag, a in found if tag == "img"]
    assert len(hrefs) == 1, found
    assert len(srcs) == 1, found
    assert hrefs[0] is not None
    assert srcs[0] is not None
    return srcs[0], hrefs[0]


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
        assert click.headers["Location"] == target, recipient


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
        f'<a href="{PUBLIC}/c/daily/hero?r=*|BLANCO_TOKEN|*">'
        f'<img src="{PUBLIC}/i/daily/hero.png?r=*|BLANCO_TOKEN|*&amp;dpr=2" width="300" '
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
    assert client.get(click_url).headers["Location"] == FALLBACK_URL


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
    assert client.get(click_url).headers["Location"] == GOLD_URL


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
    assert query == {"esp", "token_field", "alt"}
    schema = document["components"]["schemas"]["EmbedAnswer"]
    body = embed(api, "klaviyo")
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert {"esp", "html", "mjml", "image_url", "click_url", "width", "height"} <= set(body)


@pytest.mark.parametrize("esp", list(DIALECTS))
@pytest.mark.parametrize("name", ["blanco_token", "X", "a" * 64, "Send_ID_2"])
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
        params=(MergeParam("r", "blanco_token"), MergeParam("s", "blanco_send_id")),
    )
    code = embed_code(slot, "mailchimp", PUBLIC)
    assert code.image_url == (
        f"{PUBLIC}/s/daily/top.png?r=*|BLANCO_TOKEN|*&s=*|BLANCO_SEND_ID|*&dpr=2"
    )
    assert code.click_url == f"{PUBLIC}/s/daily/top?r=*|BLANCO_TOKEN|*&s=*|BLANCO_SEND_ID|*"
    merged = mailchimp(code.html, {"blanco_token": "anna.sig", "blanco_send_id": "2026-11-23"})
    image_url, click_url = image_and_link(merged)
    assert parse_qs(urlsplit(image_url).query) == {
        "r": ["anna.sig"],
        "s": ["2026-11-23"],
        "dpr": ["2"],
    }
    assert parse_qs(urlsplit(click_url).query) == {"r": ["anna.sig"], "s": ["2026-11-23"]}
