"""Live sources: validation, freshness, the store and each worker's copy, conditions, variants
that require a source, and what the render cache key takes from them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from pydantic import TypeAdapter, ValidationError

from models.campaigns.conditions import Audience, Condition
from models.campaigns.live_data import (
    MAX_SOURCES,
    MAX_VALUES_PER_SOURCE,
    LiveFields,
    LivePush,
    LiveSource,
    LiveValues,
)
from models.campaigns.live_store import LiveStore
from models.campaigns.specs import Block, BlockSpec
from models.config_cache import ConfigCache
from models.decision import choose_variant
from models.errors import Conflict, field_errors
from models.storage import keys
from renderers.base import RenderRequest
from renderers.registry import ContentParams, renderer_for
from renderers.templating import LivePath, fill, live_reads
from tests.factories import banner, block, variant

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
CONTENT: TypeAdapter[Any] = TypeAdapter(ContentParams)


def push(source: str = "flights", max_age: int = 600, **values: Any) -> LivePush:
    return LivePush.model_validate(
        {"source": source, "values": values or {"seats_left": 12}, "max_age_seconds": max_age}
    )


def pointers(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        LivePush.model_validate(document)
    return [e.pointer for e in field_errors(caught.value, document)]


# validation


def test_values_keep_their_json_types() -> None:
    pushed = push(seats_left=12, price=89.0, notice="Gate B12", delayed=True)
    assert pushed.values == {"seats_left": 12, "price": 89.0, "notice": "Gate B12", "delayed": True}
    assert [type(v) for v in pushed.values.values()] == [int, float, str, bool]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"values": {"a": {"nested": 1}}}, ["/values/a"]),
        ({"values": {"a": [1, 2]}}, ["/values/a"]),
        ({"values": {"a": None}}, ["/values/a"]),
        ({"values": {"a": "x" * 501}}, ["/values/a"]),
        ({"values": {"a": 2**60}}, ["/values/a"]),
        ({"values": {"bad-name": 1}}, ["/values/bad-name"]),
        ({"values": {"items": 1}}, ["/values/items"]),
        ({"values": {f"v{n}": n for n in range(MAX_VALUES_PER_SOURCE + 1)}}, ["/values"]),
        ({"max_age_seconds": 0}, ["/max_age_seconds"]),
        ({"max_age_seconds": -5}, ["/max_age_seconds"]),
        ({"max_age_seconds": 1.5}, ["/max_age_seconds"]),
        ({"max_age_seconds": 31 * 24 * 3600}, ["/max_age_seconds"]),
        ({"source": "Flights"}, ["/source"]),
        ({"source": "kl-123"}, ["/source"]),
        ({"source": "values"}, ["/source"]),
        ({"extra": 1}, ["/extra"]),
    ],
)
def test_bad_pushes_point_at_the_field(document: dict[str, Any], expected: list[str]) -> None:
    good = {"source": "flights", "values": {"seats_left": 12}, "max_age_seconds": 600}
    assert pointers({**good, **document}) == expected


def test_a_push_without_its_freshness_limit_is_refused() -> None:
    assert pointers({"source": "flights", "values": {}}) == ["/max_age_seconds"]


def test_the_values_of_a_source_are_bounded_in_bytes() -> None:
    document = {
        "source": "flights",
        "values": {f"v{n}": "x" * 400 for n in range(50)},
        "max_age_seconds": 60,
    }
    assert pointers(document) == [""]


# freshness


def test_a_source_is_fresh_up_to_its_maximum_age() -> None:
    stored = LiveSource(source="s", values={}, max_age_seconds=600, updated_at=NOW)
    assert stored.fresh(NOW)
    assert stored.fresh(NOW + dt.timedelta(seconds=600))
    assert not stored.fresh(NOW + dt.timedelta(seconds=601))


def test_only_fresh_sources_reach_conditions_and_templates() -> None:
    values = LiveValues(
        {
            "flights": LiveSource(
                source="flights", values={"delay": 5}, max_age_seconds=60, updated_at=NOW
            ),
            "stock": LiveSource(
                source="stock", values={"left": 3}, max_age_seconds=3600, updated_at=NOW
            ),
        }
    )
    assert values.fresh(NOW) == {"flights": {"delay": 5}, "stock": {"left": 3}}
    assert values.fresh(NOW + dt.timedelta(minutes=5)) == {"stock": {"left": 3}}


def test_templates_read_a_missing_source_as_empty() -> None:
    fields = {"live": LiveFields({"flights": {"delay": 5}})}
    assert fill("Delay {{ live.flights.delay }} min", fields, {}, 200) == "Delay 5 min"
    assert fill("[{{ live.stock.left }}]", fields, {}, 200) == "[]"
    assert fill("{{ live.stock.left | default('few') }}", fields, {}, 200) == "few"
    assert fill("{{ live['flights']['delay'] }}", fields, {}, 200) == "5"


# conditions


def live_matches(condition: dict[str, Any], live: dict[str, dict[str, Any]]) -> bool:
    result: bool = CONDITION.validate_python(condition).matches(Audience(now=NOW, live=live))
    return result


@pytest.mark.parametrize(
    ("condition", "live", "expected"),
    [
        ({"live": "flights.delay", "gt": 0}, {"flights": {"delay": 25}}, True),
        ({"live": "flights.delay", "gt": 0}, {"flights": {"delay": 0}}, False),
        ({"live": "flights.delay", "gt": 0}, {}, False),  # stale or missing source
        ({"live": "flights.delay", "gt": 0}, {"flights": {}}, False),  # missing value
        ({"live": "flights.delay", "gt": 0}, {"flights": {"delay": "late"}}, False),
        ({"live": "stock.left", "gte": 1, "lte": 5}, {"stock": {"left": 3}}, True),
        ({"live": "stock.left", "gte": 1, "lte": 5}, {"stock": {"left": 9}}, False),
        ({"live": "gate.notice", "exists": True}, {"gate": {"notice": "B12"}}, True),
        ({"live": "gate.notice", "exists": False}, {}, True),
        ({"live": "gate.notice", "in": ["B12", "B14"]}, {"gate": {"notice": "B12"}}, True),
        ({"live": "sale.on", "eq": True}, {"sale": {"on": True}}, True),
    ],
)
def test_live_conditions(
    condition: dict[str, Any], live: dict[str, dict[str, Any]], expected: bool
) -> None:
    assert live_matches(condition, live) is expected


@pytest.mark.parametrize(
    ("condition", "pointer"),
    [
        ({"live": "flights", "gt": 0}, "/live"),
        ({"live": "Flights.delay", "gt": 0}, "/live"),
        ({"live": "flights.delay"}, "/live"),  # needs an operator
    ],
)
def test_invalid_live_conditions(condition: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CONDITION.validate_python(condition)
    assert [e.pointer for e in field_errors(caught.value, condition)] == [pointer]


# variants that require a source


def make_block(variants: list[dict[str, Any]]) -> Block:
    return Block.model_validate(
        {**block(variants=variants), "campaign_id": "daily", "version": 1, "updated_at": NOW}
    )


def test_a_variant_requiring_a_stale_source_is_skipped() -> None:
    seats = {**variant("seats", priority=10), "requires_live": ["flights"]}
    generic = variant("generic", priority=1)
    b = make_block([seats, generic])
    fresh = Audience(now=NOW, live={"flights": {"seats_left": 4}})
    assert choose_variant(b, fresh, "anna")[0].id == "seats"  # type: ignore[union-attr]
    assert choose_variant(b, Audience(now=NOW), "anna")[0].id == "generic"  # type: ignore[union-attr]
    alone = make_block([seats])
    assert choose_variant(alone, Audience(now=NOW), "anna") == (None, "no variant matched")


def test_requires_live_names_sources() -> None:
    document = block(variants=[{**variant("v"), "requires_live": ["Bad-Name"]}])
    with pytest.raises(ValidationError) as caught:
        BlockSpec.model_validate(document)
    assert [e.pointer for e in field_errors(caught.value, document)] == [
        "/variants/0/requires_live/0"
    ]


# the store and each worker's copy


@pytest.fixture
def store(redis_client: redis.Redis) -> LiveStore:
    return LiveStore(redis_client)


def test_a_push_replaces_the_whole_set(store: LiveStore) -> None:
    store.put(push(seats_left=12, notice="x"), NOW)
    later = NOW + dt.timedelta(minutes=1)
    stored = store.put(push(seats_left=11), later)
    assert store.get("flights") == stored
    assert stored.values == {"seats_left": 11}
    assert stored.updated_at == later
    assert [s.source for s in store.list()] == ["flights"]
    assert store.delete("flights")
    assert not store.delete("flights")
    assert store.get("flights") is None


def test_every_write_moves_the_version(store: LiveStore, redis_client: redis.Redis) -> None:
    seen = {redis_client.get(keys.LIVE_VERSION)}
    store.put(push(), NOW)
    seen.add(redis_client.get(keys.LIVE_VERSION))
    store.put(push(), NOW)
    seen.add(redis_client.get(keys.LIVE_VERSION))
    store.delete("flights")
    seen.add(redis_client.get(keys.LIVE_VERSION))
    assert len(seen) == 4


def test_the_number_of_sources_is_bounded(store: LiveStore) -> None:
    for n in range(MAX_SOURCES):
        store.put(push(f"s{n}"), NOW)
    with pytest.raises(Conflict):
        store.put(push("one_more"), NOW)
    store.put(push("s0", seats_left=1), NOW)  # replacing one is fine
    assert len(store.list()) == MAX_SOURCES


def test_a_held_copy_never_makes_stale_data_fresh(redis_client: redis.Redis) -> None:
    store = LiveStore(redis_client)
    store.put(push(max_age=60), NOW)
    cache = ConfigCache(redis_client, check_every=0)
    cache.refresh()
    held = cache.live()
    assert held.fresh(NOW + dt.timedelta(seconds=60)) == {"flights": {"seats_left": 12}}
    assert held.fresh(NOW + dt.timedelta(seconds=61)) == {}


# templates and the render cache key


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello {{ first_name }}", frozenset()),
        (
            "{{ live.flights.delay }} and {{ live['stock'].left }}",
            {("flights", "delay"), ("stock", "left")},
        ),
        ("{{ live.flights.delay | default(0) }}", {("flights", "delay")}),
        ("{{ live.flights }}", {("flights", None)}),
        ("{% for k, v in live.flights.items() %}{{ v }}{% endfor %}", {("flights", None)}),
        ("{{ live.flights[name] }}", {("flights", None)}),
        ("{{ live }}", None),
        ("{% for s in live %}{{ s }}{% endfor %}", None),
        ("{{ live.values() | list }}", None),
        ("{{ live[name] }}", None),
    ],
)
def test_which_live_values_a_template_reads(
    source: str, expected: frozenset[LivePath] | None
) -> None:
    assert live_reads(source) == expected


def key(content: dict[str, Any], live: dict[str, dict[str, Any]], **profile: Any) -> str:
    params = CONTENT.validate_python(content)
    request = RenderRequest(
        width=300, height=100, fields={**profile, "live": LiveFields(live)}, max_text_length=200
    )
    digest: str = renderer_for(params.type).cache_key(params, request)
    return digest


def test_the_cache_key_holds_the_live_values_used() -> None:
    seats = banner("{{ live.flights.seats_left }} seats left")
    first = key(seats, {"flights": {"seats_left": 12, "price": 89}, "stock": {"left": 1}})
    assert key(seats, {"flights": {"seats_left": 12, "price": 89}, "stock": {"left": 1}}) == first
    assert key(seats, {"flights": {"seats_left": 12, "price": 95}, "stock": {"left": 2}}) == first
    assert key(seats, {"flights": {"seats_left": 12}}) == first
    assert key(seats, {"flights": {"seats_left": 11, "price": 89}, "stock": {"left": 1}}) != first
    assert key(seats, {"flights": {"price": 89}}) != first  # the value is gone
    assert key(seats, {"stock": {"left": 1}}) != first  # flights went stale


def test_a_template_reading_a_whole_source_keys_on_all_of_it() -> None:
    every = banner("{% for k, v in live.flights.items() %}{{ k }}={{ v }} {% endfor %}")
    assert key(every, {"flights": {"a": 1, "b": 2}}) != key(every, {"flights": {"a": 1, "b": 3}})
    assert key(every, {"flights": {"a": 1}, "x": {"y": 1}}) == key(every, {"flights": {"a": 1}})


def test_content_without_live_values_ignores_them() -> None:
    hello = banner("Hello {{ first_name }}")
    assert key(hello, {"flights": {"seats_left": 1}}, first_name="Anna") == key(
        hello, {}, first_name="Anna"
    )


def test_other_renderers_key_on_live_values_too() -> None:
    progress = {"type": "progress", "value": "{{ live.stock.sold }}", "goal": 100}
    assert key(progress, {"stock": {"sold": 10}}) != key(progress, {"stock": {"sold": 20}})
    card = {"type": "card", "title": {"text": "Now {{ live.deal.price }}"}}
    assert key(card, {"deal": {"price": 10}}) != key(card, {"deal": {"price": 20}})
