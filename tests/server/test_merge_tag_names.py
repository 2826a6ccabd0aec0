"""Every ESP dialect names only fields its ESP can create: each merge field name an embed uses
(block, newsletter, AMP, CLI), read back out of the merge tags, keeps that ESP's limits on
length, characters, case and reserved names; a dialect without limits, or without a reader
here, fails the first test."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.cli.embed import run_newsletter_embed
from server.embed_codes import (
    DEFAULT_SEND_FIELD,
    DEFAULT_TOKEN_FIELD,
    DIALECTS,
    FIELD_NAME,
    Dialect,
    FieldRules,
)
from server.services import Services
from tests.factories import AdminApi, error_pointers, store_block
from tests.newsletter_fixtures import item, store_newsletter

PUBLIC = "https://blanco.test"

READERS: dict[str, re.Pattern[str]] = {
    "mailchimp": re.compile(r"\*\|([^|*]+)\|\*"),
    "salesforce": re.compile(r"AttributeValue\('([^']*)'\)"),
    "braze": re.compile(r"custom_attribute\.\$\{([^}]*)\}"),
    "klaviyo": re.compile(r"person\|lookup:'([^']*)'"),
    "hubspot": re.compile(r"\{\{contact\.([^}|]*)\}\}"),
    "generic": re.compile(r"\{\{([^}|]*)\}\}"),
}
"""How to read the field names back out of each dialect's merge tags (independent of the
dialect's own code, so a tag that names something else is caught)."""


def broken_rules(rules: FieldRules, name: str) -> list[str]:
    """Each of ``rules`` that ``name`` breaks, checked here rather than by FieldRules itself."""
    broken = []
    if len(name) > rules.max_length:
        broken.append(f"longer than {rules.max_length}")
    if not re.fullmatch(rules.characters, name) or not FIELD_NAME.match(name):
        broken.append("characters")
    if (rules.case == "upper" and name != name.upper()) or (
        rules.case == "lower" and name != name.lower()
    ):
        broken.append(f"not {rules.case} case")
    if name.casefold() in {r.casefold() for r in rules.reserved}:
        broken.append("reserved")
    return broken


RAW = re.compile(r"\{% raw %\}.*?\{% endraw %\}", re.DOTALL)
"""What the Liquid/Jinja ESPs leave alone (the AMP part's amp-mustache template)."""
EMAIL_TEXT = {"html", "mjml", "amp", "image_url", "click_url", "web_view_url", "items_url"}
"""The keys of an answer whose values go into the email (not its explanations)."""


def names_in(esp: str, *texts: str) -> set[str]:
    """The field names the merge tags of ``esp`` in ``texts`` name."""
    return {name for text in texts for name in READERS[esp].findall(RAW.sub("", text))}


def email_texts(value: Any) -> Iterator[str]:
    """Every string of a JSON answer that goes into the email, parts included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in EMAIL_TEXT and isinstance(inner, str):
                yield inner
            else:
                yield from email_texts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from email_texts(inner)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app on an https public URL (the AMP part needs one)."""
    return make_app(public_url=PUBLIC, amp_allowed_senders="news@shop.example")


@pytest.fixture
def api(client: FlaskClient, admin_headers: dict[str, str]) -> AdminApi:
    """The admin API with an admin key."""
    return AdminApi(client, admin_headers)


@pytest.fixture
def newsletter(services: Services) -> None:
    """Block ``daily/hero`` and a two-slot newsletter that shows it first."""
    store_block(services, [], name="Hero")
    store_newsletter(services, [item("a", "x"), item("b", "y")], slots=2, blocks=["hero"])


def answer(api: AdminApi, path: str, **query: str) -> dict[str, Any]:
    """A 200 answer of the admin API."""
    response = api.get(path, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


# --- every dialect has rules, and its defaults keep them ------------------------------------------


def test_every_dialect_has_field_name_rules_and_a_reader() -> None:
    assert set(READERS) == set(DIALECTS), (
        "a new dialect needs its ESP's field-name rules (Dialect.rules, with their source) "
        "and a reader in READERS"
    )
    for dialect in DIALECTS.values():
        assert isinstance(dialect.rules, FieldRules), dialect.name
        assert dialect.rules.source.strip(), dialect.name
        assert 0 < dialect.rules.max_length <= 64, dialect.name
        assert dialect.rules.case in ("upper", "lower", "any"), dialect.name


def test_the_documented_limits_of_the_strict_esps() -> None:
    mailchimp, hubspot = DIALECTS["mailchimp"], DIALECTS["hubspot"]
    assert (mailchimp.rules.max_length, mailchimp.rules.case) == (10, "upper")
    assert "EMAIL" in mailchimp.rules.reserved
    assert hubspot.rules.case == "lower"
    # The names this issue was about: 12 and 14 characters, so Mailchimp could not hold them.
    assert mailchimp.field_problem("blanco_token") is not None
    assert mailchimp.field_problem("blanco_send_id") is not None


@pytest.mark.parametrize("esp", sorted(DIALECTS))
def test_the_default_fields_keep_every_rule(esp: str) -> None:
    dialect = DIALECTS[esp]
    for field in (DEFAULT_TOKEN_FIELD, DEFAULT_SEND_FIELD):
        name = dialect.tag_name(field)
        assert broken_rules(dialect.rules, name) == [], (esp, name)
        assert dialect.field_problem(field) is None
        assert names_in(esp, dialect.merge_tag(field)) == {name}


# --- what the embed codes actually name -----------------------------------------------------------


@pytest.mark.usefixtures("newsletter")
@pytest.mark.parametrize("esp", sorted(DIALECTS))
def test_every_merge_field_an_embed_names_keeps_the_esps_rules(
    api: AdminApi, services: Services, esp: str
) -> None:
    dialect: Dialect = DIALECTS[esp]
    block = answer(api, "/campaigns/daily/blocks/hero/embed", esp=esp)
    whole = answer(api, "/campaigns/daily/newsletter/embed", esp=esp)
    amp = answer(api, "/campaigns/daily/newsletter/amp", esp=esp)
    out, err = io.StringIO(), io.StringIO()
    assert run_newsletter_embed(services, "daily", esp, stdout=out, stderr=err) == 0

    token, send = dialect.tag_name(DEFAULT_TOKEN_FIELD), dialect.tag_name(DEFAULT_SEND_FIELD)
    assert names_in(esp, *email_texts(block)) == {token}
    assert names_in(esp, *email_texts(whole)) == {token, send}
    assert names_in(esp, *email_texts(amp)) == {token, send}
    assert names_in(esp, out.getvalue(), err.getvalue()) == {token, send}
    assert f"the ESP field {send}, merge tag {dialect.merge_tag(DEFAULT_SEND_FIELD)}" in (
        err.getvalue()
    )
    for name in (token, send):
        assert broken_rules(dialect.rules, name) == [], (esp, name)


# --- names an ESP cannot hold are refused, pointing at the parameter -----------------------------


def refused_names(dialect: Dialect) -> list[str]:
    """Names that pass Blanco's own rule but break one of the dialect's."""
    rules = dialect.rules
    names = [f"b{'x' * rules.max_length}"] if rules.max_length < 64 else []
    if rules.case == "lower":
        names.append("Bl_Token")
    names += sorted(name for name in rules.reserved if FIELD_NAME.match(name))
    return names


REFUSED = [(esp, name) for esp in sorted(DIALECTS) for name in refused_names(DIALECTS[esp])]


def test_every_strict_rule_has_a_refusal_case() -> None:
    assert {esp for esp, _ in REFUSED} >= {"mailchimp", "salesforce", "hubspot", "generic"}


@pytest.mark.usefixtures("newsletter")
@pytest.mark.parametrize(("esp", "name"), REFUSED)
def test_a_field_the_esp_cannot_hold_is_refused(api: AdminApi, esp: str, name: str) -> None:
    assert broken_rules(DIALECTS[esp].rules, DIALECTS[esp].tag_name(name))
    for path, parameter in [
        ("/campaigns/daily/blocks/hero/embed", "token_field"),
        ("/campaigns/daily/newsletter/embed", "send_field"),
        ("/campaigns/daily/newsletter/amp", "token_field"),
    ]:
        response = api.get(path, query_string={"esp": esp, parameter: name})
        assert error_pointers(response) == [(f"/{parameter}", parameter)], (path, name)


@pytest.mark.usefixtures("newsletter")
def test_mailchimp_says_why_the_old_names_do_not_fit(api: AdminApi, services: Services) -> None:
    response = api.get(
        "/campaigns/daily/blocks/hero/embed",
        query_string={"esp": "mailchimp", "token_field": "blanco_token"},
    )
    (error,) = response.get_json()["errors"]
    assert "at most 10 characters (BLANCO_TOKEN has 12)" in error["detail"]
    err = io.StringIO()
    status = run_newsletter_embed(
        services, "daily", "mailchimp", send_field="blanco_send_id", stderr=err
    )
    assert status == 2
    assert "send_field: Mailchimp field names: at most 10 characters" in err.getvalue()
