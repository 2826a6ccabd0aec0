"""Conversions end to end: a person's click carries a token, an order comes back by the API,
the webhook, the pixel or the transactions import, and is credited to the click's email."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask.testing import FlaskClient

from models.conversions.click_refs import ClickRef
from models.conversions.conversions import ALREADY_RECORDED
from models.conversions.money_counts import to_minor
from models.storage import keys
from server.services import Services
from tests.factories import (
    AdminApi,
    FakeClock,
    problem,
    store_block,
    store_recipient,
    variant,
)
from tests.user_agents import APPLE_MPP, BROWSER, IOS_MAIL, SCANNER


@pytest.fixture
def api(client: FlaskClient, ingest_headers: dict[str, str]) -> AdminApi:
    """The admin API with an ingest key."""
    return AdminApi(client, ingest_headers)


@pytest.fixture
def shop(services: Services) -> Services:
    """A hero block showing `hot` to recipients scored 0.5 or more, else `cold`."""
    store_block(
        services,
        [
            variant("hot", {"score": "p", "gte": 0.5}, priority=2),
            variant("cold", priority=1, target_url="https://shop.example/cold?utm=mail#top"),
        ],
    )
    for rid, score in (("anna", 0.9), ("bram", 0.1), ("eva", 0.9)):
        store_recipient(services, rid, scores={"p": score})
    return services


def open_image(client: FlaskClient, services: Services, rid: str, headers: dict[str, str]) -> Any:
    return client.get(
        "/i/daily/hero.png", query_string={"r": services.signer.sign(rid)}, headers=headers
    )


def click(
    client: FlaskClient, services: Services, rid: str, headers: dict[str, str] = BROWSER
) -> Any:
    response = client.get(
        "/c/daily/hero", query_string={"r": services.signer.sign(rid)}, headers=headers
    )
    assert response.status_code == 302
    return response


def token_of(response: Any) -> str | None:
    found = parse_qs(urlsplit(response.headers["Location"]).query).get("bl_click")
    return found[0] if found else None


def order(order_id: str, amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "currency": "EUR", **extra}


def money(client: FlaskClient, headers: dict[str, str], arm: str, **query: str) -> dict[str, Any]:
    response = client.get("/api/v1/campaigns/daily/report", headers=headers, query_string=query)
    assert response.status_code == 200, response.get_json()
    figures: dict[str, Any] = response.get_json()["blocks"]["hero"]["arms"][arm]["money"]
    return figures


# the click's token


def test_a_persons_click_carries_a_signed_token_that_names_no_one(
    client: FlaskClient, shop: Services, redis_client: redis.Redis
) -> None:
    response = click(client, shop, "bram")
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert (location.netloc, location.path, location.fragment) == ("shop.example", "/cold", "top")
    assert query["utm"] == ["mail"]  # the landing page's own query stays
    token = query["bl_click"][0]
    assert "bram" not in token
    assert shop.signer.pseudonym("bram") not in token
    ref = shop.signer.verify_click(token)
    assert ref is not None
    assert ref.slot == keys.recipient_slot("bram")
    assert shop.conversions.referenced_click(ref).recipient_id == "bram"  # type: ignore[union-attr]
    assert shop.signer.verify_click(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert redis_client.ttl(ref.key) == 7 * 86400


def test_a_bots_click_carries_no_token_and_keeps_no_touch(
    client: FlaskClient, shop: Services, redis_client: redis.Redis
) -> None:
    assert token_of(click(client, shop, "anna", SCANNER)) is None
    assert redis_client.get(keys.last_click("anna")) is None


def test_no_token_when_the_parameter_is_switched_off(make_app: Any) -> None:
    app = make_app(click_token_param="")
    services = app.extensions["blanco"]
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    response = app.test_client().get(
        "/c/daily/hero", query_string={"r": services.signer.sign("anna")}
    )
    assert response.headers["Location"] == "https://shop.example/hot"
    assert "Set-Cookie" not in response.headers


def test_on_the_shops_domain_the_redirect_sets_a_first_party_cookie(make_app: Any) -> None:
    app = make_app(click_cookie_domain="shop.example")
    services = app.extensions["blanco"]
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    response = app.test_client().get(
        "/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"blanco_click={token_of(response)};")
    for part in ("Domain=shop.example", "Max-Age=604800", "Secure", "HttpOnly", "SameSite=Lax"):
        assert part in cookie


@pytest.mark.parametrize(
    ("target_url", "carries"),
    [
        ("https://shop.example/hot", True),
        ("https://www.shop.example/hot", True),
        ("https://partner.example/hot", False),
        ("https://shop.example.partner.example/hot", False),
    ],
)
def test_only_the_configured_hosts_receive_the_token(
    make_app: Any, redis_client: redis.Redis, target_url: str, carries: bool
) -> None:
    app = make_app(click_token_hosts="shop.example")
    services = app.extensions["blanco"]
    store_block(services, [variant("hot", target_url=target_url)])
    store_recipient(services, "anna")
    response = app.test_client().get(
        "/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER
    )
    assert response.headers["Location"].startswith(target_url)
    assert (token_of(response) is not None) is carries
    assert bool(redis_client.zcard(keys.click_ids("anna"))) is carries  # no reference kept


def test_without_a_cookie_domain_no_cookie_is_set(client: FlaskClient, shop: Services) -> None:
    assert "Set-Cookie" not in click(client, shop, "anna").headers


# crediting


def test_an_order_after_a_click_is_credited_to_the_clicked_arm(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    open_image(client, shop, "anna", IOS_MAIL)
    click(client, shop, "anna")
    response = api.post("/conversions", json=order("o-1", "250.00", recipient_id="anna"))
    assert response.status_code == 201, response.get_json()
    credited = response.get_json()
    assert credited["attribution"]["basis"] == "click"
    assert credited["attribution"]["touch"]["variant"] == "hot"
    assert credited["value"] == "250.00"
    hot = money(client, admin_headers, "hot")
    assert hot["click"] == {
        "orders": 1,
        "converters": 1,
        "revenue": "250.00",
        "conversion_rate": 1.0,
        "revenue_per_recipient": "250.00",
        "revenue_per_thousand": "250000.00",
    }
    assert hot["view"]["orders"] == 0
    listed = api.get("/recipients/anna/conversions").get_json()["conversions"]
    assert [(c["order_id"], c["attribution"]["basis"]) for c in listed] == [("o-1", "click")]


def test_the_token_alone_names_the_buyer(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    token = token_of(click(client, shop, "bram"))
    response = api.post("/conversions", json=order("o-2", "80", click=token))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["recipient_id"] == "bram"
    assert money(client, admin_headers, "cold")["click"]["revenue"] == "80.00"
    stored = api.get("/recipients/bram/transactions").get_json()["transactions"]
    assert [t["order_id"] for t in stored] == ["o-2"]


def test_sending_an_order_again_counts_it_once_and_a_new_value_by_its_difference(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    for _ in range(3):
        assert (
            api.post("/conversions", json=order("o-1", "100", recipient_id="anna")).status_code
            == 201
        )
    assert money(client, admin_headers, "hot")["click"]["revenue"] == "100.00"
    api.post("/conversions", json=order("o-1", "120", recipient_id="anna"))
    api.post("/conversions", json=order("o-9", "30", recipient_id="anna"))
    hot = money(client, admin_headers, "hot")["click"]
    assert (hot["orders"], hot["converters"], hot["revenue"]) == (2, 1, "150.00")


def test_an_orders_credit_never_moves(
    client: FlaskClient,
    shop: Services,
    api: AdminApi,
    clock: FakeClock,
    admin_headers: dict[str, str],
) -> None:
    click(client, shop, "anna")
    api.post("/conversions", json=order("o-1", recipient_id="anna"))
    clock.advance(days=1)
    store_recipient(shop, "anna", scores={"p": 0.1})  # now she would be shown `cold`
    shop.redis.hdel(keys.decisions("anna"), "daily/hero")
    click(client, shop, "anna")
    again = api.post("/conversions", json=order("o-1", "100.00", recipient_id="anna")).get_json()
    assert again["attribution"]["touch"]["variant"] == "hot"
    assert money(client, admin_headers, "cold")["click"]["orders"] == 0


def test_view_through_is_a_persons_open_and_apart_from_clicks(
    client: FlaskClient,
    shop: Services,
    api: AdminApi,
    clock: FakeClock,
    admin_headers: dict[str, str],
) -> None:
    open_image(client, shop, "anna", APPLE_MPP)  # Apple's prefetch: not a person
    assert (
        api.post("/conversions", json=order("o-1", recipient_id="anna")).get_json()["attribution"][
            "basis"
        ]
        == "none"
    )
    open_image(client, shop, "anna", IOS_MAIL)
    clock.advance(hours=20)
    credited = api.post("/conversions", json=order("o-2", "40", recipient_id="anna")).get_json()
    assert credited["attribution"]["basis"] == "view"
    hot = money(client, admin_headers, "hot")
    assert (hot["view"]["orders"], hot["view"]["revenue"], hot["click"]["orders"]) == (
        1,
        "40.00",
        0,
    )
    clock.advance(hours=5)  # a day and an hour after the open
    assert (
        api.post("/conversions", json=order("o-3", recipient_id="anna")).get_json()["attribution"][
            "basis"
        ]
        == "none"
    )


def test_a_click_older_than_the_window_earns_nothing(
    client: FlaskClient, shop: Services, api: AdminApi, clock: FakeClock
) -> None:
    click(client, shop, "anna")
    clock.advance(days=7, minutes=1)
    assert (
        api.post("/conversions", json=order("o-1", recipient_id="anna")).get_json()["attribution"][
            "basis"
        ]
        == "none"
    )


def test_orders_in_another_currency_are_converted_with_the_configured_rates(make_app: Any) -> None:
    app = make_app(segmentation_exchange_rates="USD=0.90")
    services, client = app.extensions["blanco"], app.test_client()
    _, key = services.api_keys.create("shop", ["ingest"])
    api = AdminApi(client, {"Authorization": f"Bearer {key}"})
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    client.get("/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER)
    usd = api.post(
        "/conversions", json={**order("o-1", "100"), "currency": "USD", "recipient_id": "anna"}
    )
    assert usd.get_json()["value"] == "90.00"
    chf = api.post(
        "/conversions", json={**order("o-2", "100"), "currency": "CHF", "recipient_id": "anna"}
    )
    assert chf.status_code == 201
    assert chf.get_json()["value"] is None
    assert chf.get_json()["note"] == "no exchange rate for CHF into EUR"
    assert [
        t["order_id"] for t in api.get("/recipients/anna/transactions").get_json()["transactions"]
    ] == ["o-1", "o-2"]
    headers = {"Authorization": f"Bearer {services.api_keys.create('reader', ['admin'])[1]}"}
    counted = money(client, headers, "hot")["click"]
    assert (counted["orders"], counted["revenue"]) == (1, "90.00")  # the CHF order is left out


def test_a_refund_is_stored_but_not_credited(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    line = {
        "recipient_id": "anna",
        "order_id": "o-1-r",
        "type": "refund",
        "at": "2026-11-23T10:00:00+00:00",
        "amount": "50",
        "currency": "EUR",
    }
    response = api.post(
        "/transactions/bulk", data=json.dumps(line), content_type="application/x-ndjson"
    )
    assert response.get_json()["stored"] == 1
    assert money(client, admin_headers, "hot")["click"]["orders"] == 0
    assert api.get("/recipients/anna/conversions").get_json()["conversions"] == []


def test_the_transactions_import_credits_its_orders(
    client: FlaskClient,
    shop: Services,
    api: AdminApi,
    admin_headers: dict[str, str],
    clock: FakeClock,
) -> None:
    click(client, shop, "anna")
    at = (clock.now + dt.timedelta(hours=2)).isoformat()
    rows = f"recipient_id,order_id,at,amount,currency\nanna,o-7,{at},64.50,EUR\n"
    response = api.post("/transactions/bulk", data=rows, content_type="text/csv")
    assert response.get_json()["stored"] == 1, response.get_json()
    assert money(client, admin_headers, "hot")["click"]["revenue"] == "64.50"


# bad input


def test_a_conversion_without_a_buyer_is_refused_with_a_pointer(
    client: FlaskClient, shop: Services, api: AdminApi, redis_client: redis.Redis
) -> None:
    nobody = problem(api.post("/conversions", json=order("o-1")), 422)
    assert nobody["errors"][0]["pointer"] == "/recipient_id"
    forged = problem(
        api.post("/conversions", json=order("o-1", click="0000abcdefghijklmnop.x")), 422
    )
    assert (forged["errors"][0]["pointer"], forged["errors"][0]["detail"]) == (
        "/click",
        "not a genuine attribution token",
    )
    token = shop.signer.sign_click(ClickRef(keys.recipient_slot("anna"), "A" * 16))  # never kept
    expired = problem(api.post("/conversions", json=order("o-1", click=token)), 422)
    assert expired["errors"][0]["pointer"] == "/click"
    bad = problem(
        api.post("/conversions", json={**order("o-1", "-3"), "recipient_id": "anna"}), 422
    )
    assert bad["errors"][0]["pointer"] == "/amount"
    assert redis_client.hlen(keys.transactions("anna")) == 0  # nothing stored


def test_with_a_recipient_id_a_token_that_is_not_genuine_is_passed_over(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    forged = order("o-1", recipient_id="anna", click="0000abcdefghijklmnop.x")
    response = api.post("/conversions", json=forged)
    assert response.status_code == 201
    assert response.get_json()["attribution"]["touch"]["variant"] == "hot"  # her own click
    assert money(client, admin_headers, "hot")["click"]["orders"] == 1


def test_bulk_conversions_report_each_bad_line_and_keep_the_good_ones(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    token = token_of(click(client, shop, "bram"))
    lines = [
        order("o-1", "10", recipient_id="anna"),
        order("o-2", "20", click=token),
        order("o-3", "30"),
        {"order_id": "o-4"},
        order("o-5", "50", click="0000abcdefghijklmnop.x"),
    ]
    body = "\n".join(json.dumps(line) for line in lines)
    report = api.post(
        "/conversions/bulk", data=body, content_type="application/x-ndjson"
    ).get_json()
    assert (report["received"], report["stored"], report["rejected"]) == (5, 2, 3)
    assert {(e["line"], e["pointer"]) for e in report["errors"]} == {
        (3, "/recipient_id"),
        (4, "/amount"),
        (5, "/click"),
    }
    assert money(client, admin_headers, "cold")["click"]["revenue"] == "20.00"


def test_an_erased_recipients_orders_are_refused(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    token = token_of(click(client, shop, "anna"))
    assert client.delete("/api/v1/recipients/anna", headers=admin_headers).status_code == 204
    assert shop.conversions.referenced_click(shop.signer.verify_click(token)) is None  # type: ignore[arg-type]
    assert api.post("/conversions", json=order("o-1", recipient_id="anna")).status_code == 409
    assert api.post("/conversions", json=order("o-2", click=token)).status_code == 422


# the Segment or RudderStack webhook


def order_completed(**properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "anna",
        "timestamp": "2026-11-23T11:00:00.000Z",
        "properties": {
            "order_id": "o-50",
            "total": 99.9,
            "currency": "EUR",
            "products": [
                {"product_id": "lisbon", "price": 99.9, "quantity": 1, "category": "city_trip"}
            ],
            **properties,
        },
    }


def test_an_order_completed_event_is_a_conversion(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    response = api.post("/conversions/track", json=order_completed())
    assert response.get_json() == {
        "received": 1,
        "orders": 1,
        "recorded": 1,
        "ignored": 0,
        "errors": [],
    }
    assert money(client, admin_headers, "hot")["click"]["revenue"] == "99.90"
    (stored,) = api.get("/recipients/anna/transactions").get_json()["transactions"]
    assert stored["items"] == [
        {"id": "lisbon", "quantity": 1, "price": "99.9", "category": "city_trip"}
    ]
    page = api.post("/conversions/track", json={"type": "page", "userId": "anna"})
    assert (page.get_json()["ignored"], page.get_json()["recorded"]) == (1, 0)


def test_a_webhook_batch_reports_its_unusable_orders_by_pointer(
    client: FlaskClient, shop: Services, api: AdminApi
) -> None:
    token = token_of(click(client, shop, "bram"))
    batch = [
        order_completed(),
        {"type": "identify", "userId": "anna"},
        {**order_completed(order_id=None), "userId": "bram"},
        {
            **order_completed(order_id="o-51"),
            "userId": None,
            "context": {"page": {"url": f"https://shop.example/thanks?bl_click={token}"}},
        },
    ]
    found = api.post("/conversions/track", json={"batch": batch}).get_json()
    assert (found["received"], found["orders"], found["recorded"], found["ignored"]) == (4, 3, 2, 1)
    assert [e["pointer"] for e in found["errors"]] == ["/batch/2/properties/order_id"]
    assert [
        t["order_id"] for t in api.get("/recipients/bram/transactions").get_json()["transactions"]
    ] == ["o-51"]
    alone = problem(api.post("/conversions/track", json=order_completed(currency="XXQ")), 422)
    assert alone["errors"][0]["pointer"] == "/properties/currency"


# the pixel


def test_the_pixel_records_an_order_with_a_genuine_token_and_always_answers_a_gif(
    client: FlaskClient, shop: Services, admin_headers: dict[str, str], redis_client: redis.Redis
) -> None:
    token = token_of(click(client, shop, "anna"))
    answers = {
        "recorded": client.get(
            "/cv.gif",
            query_string={"o": "o-1", "a": "12.5", "c": "EUR", "t": token, "i": "lisbon,crete"},
        ),
        "no token": client.get("/cv.gif", query_string={"o": "o-2", "a": "1", "c": "EUR"}),
        "forged": client.get(
            "/cv.gif",
            query_string={"o": "o-3", "a": "1", "c": "EUR", "t": "0000abcdefghijklmnop.x"},
        ),
        "invalid": client.get(
            "/cv.gif", query_string={"o": "o 4", "a": "x", "c": "EUR", "t": token}
        ),
    }
    for response in answers.values():
        assert (response.status_code, response.mimetype) == (200, "image/gif")
        assert response.headers["Cache-Control"] == "no-store"
    outcome = {name: r.headers["X-Blanco-Conversion"] for name, r in answers.items()}
    assert outcome == {
        "recorded": "recorded",
        "no token": "ignored: no attribution token",
        "forged": "ignored: not a genuine attribution token",
        "invalid": "ignored: invalid amount, order_id",
    }
    assert money(client, admin_headers, "hot")["click"]["revenue"] == "12.50"
    stored = json.loads(redis_client.hget(keys.transactions("anna"), "o-1") or "{}")
    assert [i["id"] for i in stored["items"]] == ["lisbon", "crete"]


def test_one_token_reports_a_bounded_number_of_orders_through_the_pixel(
    make_app: Any, admin_headers: dict[str, str]
) -> None:
    app = make_app(pixel_orders_per_click=2)
    services, client = app.extensions["blanco"], app.test_client()
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    token = token_of(click(client, services, "anna"))

    def pixel(order_id: str) -> str:
        query = {"o": order_id, "a": "10", "c": "EUR", "t": token}
        return str(client.get("/cv.gif", query_string=query).headers["X-Blanco-Conversion"])

    assert [pixel("o-1"), pixel("o-2")] == ["recorded"] * 2
    assert pixel("o-1") == f"ignored: {ALREADY_RECORDED}"  # a reload: no quota, no change
    assert pixel("o-3") == "ignored: this click's token has reported as many orders as it may"
    assert not services.redis.hexists(keys.transactions("anna"), "o-3")
    assert money(client, admin_headers, "hot")["click"]["orders"] == 2
    keyed = AdminApi(client, admin_headers)  # with a key, the same token has no such limit
    assert keyed.post("/conversions", json=order("o-3", click=token)).status_code == 201
    assert money(client, admin_headers, "hot")["click"]["orders"] == 3


def test_the_pixel_reads_the_cookie_set_on_the_shops_domain(make_app: Any) -> None:
    app = make_app(click_cookie_domain="blanco.test")
    services, client = app.extensions["blanco"], app.test_client()
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    clicked = client.get(
        "/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER
    )
    name, _, value = clicked.headers["Set-Cookie"].split(";")[0].partition("=")
    client.set_cookie(name, value)  # what the shopper's browser sends back (over HTTPS)
    response = client.get("/cv.gif", query_string={"o": "o-1", "a": "5", "c": "EUR"})
    assert response.headers["X-Blanco-Conversion"] == "recorded"
    assert services.redis.hexists(keys.transactions("anna"), "o-1")


def test_the_script_is_served_with_the_settings_it_needs(client: FlaskClient) -> None:
    response = client.get("/cv.js")
    assert response.mimetype == "text/javascript"
    body = response.get_data(as_text=True)
    for expected in ('"bl_click"', '"blanco_click"', "604800", '"http://blanco.test/cv.gif"'):
        assert expected in body
    assert "window.blanco.conversion" in body


def test_money_is_exact_to_the_cent(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    click(client, shop, "eva")
    amounts = ["0.10", "0.20", "19.99", "1000000.01"]
    for n, amount in enumerate(amounts):
        rid = "anna" if n % 2 else "eva"
        api.post("/conversions", json=order(f"o-{n}", amount, recipient_id=rid))
    hot = money(client, admin_headers, "hot")["click"]
    assert Decimal(hot["revenue"]) == sum(Decimal(a) for a in amounts)
    assert (hot["orders"], hot["converters"]) == (4, 2)


def test_an_order_sent_server_to_server_replaces_the_pixels_value(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    token = token_of(click(client, shop, "anna"))
    client.get("/cv.gif", query_string={"o": "o-1", "a": "1.00", "c": "EUR", "t": token})
    api.post("/conversions", json=order("o-1", "75.00", recipient_id="anna"))
    hot = money(client, admin_headers, "hot")["click"]
    assert (hot["orders"], hot["revenue"]) == (1, "75.00")


def test_the_pixel_never_changes_an_order_already_recorded(
    client: FlaskClient, shop: Services, api: AdminApi, admin_headers: dict[str, str]
) -> None:
    click(client, shop, "anna")
    assert (
        api.post("/conversions", json=order("o-1", "75.00", recipient_id="anna")).status_code == 201
    )
    token = token_of(click(client, shop, "anna"))
    answer = client.get("/cv.gif", query_string={"o": "o-1", "a": "0.01", "c": "EUR", "t": token})
    assert answer.headers["X-Blanco-Conversion"] == f"ignored: {ALREADY_RECORDED}"
    hot = money(client, admin_headers, "hot")["click"]
    assert (hot["orders"], hot["revenue"]) == (1, "75.00")
    stored = json.loads(shop.redis.hget(keys.transactions("anna"), "o-1") or "{}")
    assert stored["amount"] == "75.00"


def test_amounts_and_times_are_checked_and_written_plainly(
    client: FlaskClient, shop: Services, api: AdminApi
) -> None:
    for at in ("0001-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"):
        old = problem(api.post("/conversions", json=order("o-1", recipient_id="anna", at=at)), 422)
        assert old["errors"][0]["pointer"] == "/at"
    assert api.get("/recipients/anna/conversions").get_json()["conversions"] == []
    for sent, kept in (("1e5", "100000"), ("-0", "0"), ("12.50", "12.50"), ("0.005", "0.005")):
        assert (
            api.post("/conversions", json=order(f"o-{kept}", sent, recipient_id="anna")).status_code
            == 201
        )
        assert (
            json.loads(shop.redis.hget(keys.transactions("anna"), f"o-{kept}") or "{}")["amount"]
            == kept
        )


def test_money_counts_an_orders_value_to_the_cent_rounded_half_to_even() -> None:
    assert [to_minor(Decimal(v)) for v in ("0.005", "0.015", "0.0149", "12.345")] == [0, 2, 1, 1234]


def test_the_pixel_answers_its_gif_when_redis_is_down(make_app: Any) -> None:
    app = make_app(redis_url="redis://127.0.0.1:9/0", redis_timeout_seconds=0.2)
    services = app.extensions["blanco"]
    token = services.signer.sign_click(ClickRef(keys.recipient_slot("anna"), "A" * 16))
    response = app.test_client().get(
        "/cv.gif", query_string={"o": "o-1", "a": "1", "c": "EUR", "t": token}
    )
    assert (response.status_code, response.mimetype) == (200, "image/gif")
    assert response.headers["X-Blanco-Conversion"] == "ignored: not recorded (server error)"


def test_an_order_completed_without_a_currency_is_in_dollars(
    client: FlaskClient, shop: Services, api: AdminApi
) -> None:
    event = order_completed()
    del event["properties"]["currency"]
    assert api.post("/conversions/track", json=event).get_json()["recorded"] == 1
    (stored,) = api.get("/recipients/anna/transactions").get_json()["transactions"]
    assert stored["currency"] == "USD"


def test_a_re_open_within_ten_minutes_is_not_written_again(
    client: FlaskClient, shop: Services, clock: FakeClock, redis_client: redis.Redis
) -> None:
    def last_view_at() -> float:
        stored = redis_client.get(keys.last_view("anna"))
        assert stored is not None
        return float(json.loads(stored)[4])

    open_image(client, shop, "anna", IOS_MAIL)
    first = last_view_at()
    clock.advance(minutes=9)
    open_image(client, shop, "anna", IOS_MAIL)
    assert last_view_at() == first  # the re-open cost no write
    clock.advance(minutes=2)
    open_image(client, shop, "anna", IOS_MAIL)
    assert last_view_at() == first + 11 * 60


def test_an_order_right_after_the_click_finds_it_with_records_in_the_background(
    make_app: Any,
) -> None:
    """The click's reference is written before its redirect answers (the rest of the record
    may follow later, from the background writer)."""
    app = make_app(record_in_background=True)
    services, client = app.extensions["blanco"], app.test_client()
    store_block(services, [variant("hot")])
    store_recipient(services, "anna")
    _, key = services.api_keys.create("shop", ["ingest"])
    api = AdminApi(client, {"Authorization": f"Bearer {key}"})
    for n in range(5):
        clicked = client.get(
            "/c/daily/hero", query_string={"r": services.signer.sign("anna")}, headers=BROWSER
        )
        at_once = api.post("/conversions", json=order(f"o-{n}", click=token_of(clicked)))
        assert at_once.status_code == 201, at_once.get_json()
        assert at_once.get_json()["attribution"]["basis"] == "click"
    assert app.extensions["blanco.open"].recorder.flush()
