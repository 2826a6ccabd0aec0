"""``blanco embed``: a block's embed code for an ESP on stdout, what the ESP needs on stderr."""

from __future__ import annotations

import io
import json

import mjml
import pytest
import redis
from flask.testing import FlaskClient

from server.cli.embed import cmd_embed, run_embed
from server.cli.main import build_parser
from server.embed_codes import DIALECTS, EMPTY_ALT_WARNING
from server.services import Services
from tests.conftest import SIGNING_KEY
from tests.esp_merges import braze, image_and_link, klaviyo, salesforce
from tests.factories import corner_color, hex_rgb, landing, store_block, store_recipient, variant

GOLD = "#0B7A75"
GOLD_URL = "https://shop.example/gold"


@pytest.fixture
def hero(services: Services) -> None:
    """Block ``daily/hero`` whose gold variant only Anna matches."""
    store_block(
        services,
        [variant("gold", {"attr": "tier", "eq": "gold"}, background=GOLD, target_url=GOLD_URL)],
        name="Hero banner",
    )
    store_recipient(services, "anna", {"first_name": "Anna", "tier": "gold"})


def run(services: Services, *args: str) -> tuple[int, str, str]:
    """Parse ``blanco embed ARGS`` with the real parser and run it on ``services``."""
    parsed = build_parser().parse_args(["embed", *args])
    out, err = io.StringIO(), io.StringIO()
    status = run_embed(
        services,
        parsed.campaign,
        parsed.block,
        parsed.esp,
        parsed.token_field,
        parsed.alt,
        parsed.format,
        out,
        err,
    )
    return status, out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("hero")
def test_html_on_stdout_works_once_the_esp_merges_it(
    services: Services, client: FlaskClient
) -> None:
    status, out, err = run(services, "daily", "hero", "--esp", "salesforce")
    assert status == 0
    html = out.strip()
    assert out.count("\n") == 1
    assert "%%=URLEncode(AttributeValue('bl_token'),1,1)=%%" in html
    image_url, click_url = image_and_link(
        salesforce(html, {"bl_token": services.signer.sign("anna")})
    )
    assert corner_color(client.get(image_url).data) == hex_rgb(GOLD)
    assert landing(client.get(click_url)) == GOLD_URL
    assert err.splitlines()[0] == "Salesforce Marketing Cloud (AMPscript):"
    assert "URL parameter r: the ESP field bl_token" in err
    assert "URL-encoding: AMPscript URLEncode" in err


@pytest.mark.usefixtures("hero")
def test_alt_defaults_to_the_block_name_and_can_be_given(services: Services) -> None:
    _, out, _ = run(services, "daily", "hero", "--esp", "generic")
    assert 'alt="Hero banner"' in out
    _, out, _ = run(services, "daily", "hero", "--esp", "generic", "--alt", "Deals & more")
    assert 'alt="Deals &amp; more"' in out


def test_empty_alt_is_pointed_out(services: Services) -> None:
    store_block(services, [])
    status, out, err = run(services, "daily", "hero", "--esp", "mailchimp")
    assert status == 0
    assert 'alt=""' in out
    assert f"warning: {EMPTY_ALT_WARNING}\n" in err
    _, json_out, json_err = run(services, "daily", "hero", "--esp", "mailchimp", "--format", "json")
    assert json.loads(json_out)["warnings"] == [EMPTY_ALT_WARNING]
    assert "warning: " in json_err


@pytest.mark.usefixtures("hero")
def test_alt_text_means_no_warning(services: Services) -> None:
    _, out, err = run(services, "daily", "hero", "--esp", "braze", "--format", "json")
    assert json.loads(out)["warnings"] == []
    assert "warning" not in err


@pytest.mark.usefixtures("hero")
def test_mjml_and_json_formats(services: Services, client: FlaskClient) -> None:
    _, mjml_out, _ = run(services, "daily", "hero", "--esp", "braze", "--format", "mjml")
    compiled = mjml.mjml2html(
        f"<mjml><mj-body><mj-section><mj-column>{mjml_out}</mj-column></mj-section>"
        "</mj-body></mjml>"
    )
    image_url, click_url = image_and_link(
        braze(compiled, {"bl_token": services.signer.sign("anna")})
    )
    assert corner_color(client.get(image_url).data) == hex_rgb(GOLD)
    assert landing(client.get(click_url)) == GOLD_URL
    _, json_out, _ = run(
        services, "daily", "hero", "--esp", "klaviyo", "--token-field", "tok", "--format", "json"
    )
    answer = json.loads(json_out)
    assert answer["esp"] == "klaviyo"
    assert answer["fields"] == {"r": "tok"}
    assert (answer["width"], answer["height"]) == (300, 100)
    merged = klaviyo(answer["html"], {"tok": services.signer.sign("anna")})
    assert image_and_link(merged)[1].startswith("http://blanco.test/c/daily/hero?r=anna.")


@pytest.mark.usefixtures("hero")
def test_unknown_block_exits_1_and_bad_field_exits_2(services: Services) -> None:
    status, out, err = run(services, "daily", "nope", "--esp", "braze")
    assert (status, out) == (1, "")
    assert err == "blanco embed: no block 'nope' in campaign 'daily'\n"
    status, out, err = run(services, "daily", "hero", "--esp", "braze", "--token-field", "a b")
    assert (status, out) == (2, "")
    assert "token_field: a letter, then up to 63 letters, digits or _" in err


def test_the_parser_knows_the_esps() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "daily", "hero", "--esp", "sendgrid"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "daily", "hero"])  # --esp is required
    for esp in DIALECTS:
        parsed = build_parser().parse_args(["embed", "daily", "hero", "--esp", esp])
        assert (parsed.esp, parsed.token_field, parsed.alt, parsed.format) == (
            esp,
            "bl_token",
            None,
            "html",
        )
        assert parsed.handler == cmd_embed


@pytest.mark.usefixtures("hero")
def test_embed_handler_uses_the_configured_redis_and_public_url(
    redis_url: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BLANCO_SIGNING_KEYS", SIGNING_KEY)
    monkeypatch.setenv("BLANCO_PUBLIC_URL", "https://img.shop.example/")
    args = build_parser().parse_args(["embed", "daily", "hero", "--esp", "hubspot"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert image_and_link(out) == (
        "https://img.shop.example/i/daily/hero.png?r={{contact.bl_token}}&dpr=2",
        "https://img.shop.example/c/daily/hero?r={{contact.bl_token}}",
    )
