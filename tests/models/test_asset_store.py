"""The asset store on a real Redis: content-addressed, stored once, nothing stored when refused."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from models.assets.asset_store import AssetStore
from models.assets.image_validation import ImageLimits
from models.errors import InvalidInput, NotFound
from models.storage import keys
from models.storage.batch import node_name
from tests.factories import RoundTrips, raw_client
from tests.sample_images import image_bytes, png_declaring

T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def bytes_client(redis_url: str, redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A ``decode_responses=False`` client on the (flushed) test database."""
    client = raw_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def store(bytes_client: redis.Redis) -> AssetStore:
    """A store with small limits."""
    return AssetStore(bytes_client, ImageLimits(max_bytes=64 * 1024, max_pixels=250_000))


def test_put_stores_bytes_and_metadata(store: AssetStore, bytes_client: redis.Redis) -> None:
    data = image_bytes("PNG", (40, 30))
    asset, created = store.put(data, "hero", now=T0)
    assert created
    assert asset.id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (asset.media_type, asset.width, asset.height, asset.frames) == ("image/png", 40, 30, 1)
    assert (asset.bytes, asset.created_at, asset.name) == (len(data), T0, "hero")
    assert store.get(asset.id) == asset
    assert bytes_client.get(keys.asset(asset.id)) == data
    assert bytes_client.smembers(keys.ASSET_INDEX) == {asset.id.encode()}


def test_bytes_and_metadata_share_a_cluster_slot(store: AssetStore) -> None:
    asset, _ = store.put(image_bytes("GIF"))
    assert key_slot(keys.asset(asset.id).encode()) == key_slot(keys.asset_meta(asset.id).encode())


def test_same_bytes_twice_same_id_stored_once(store: AssetStore, bytes_client: redis.Redis) -> None:
    data = image_bytes("JPEG")
    first, created_first = store.put(data, "first", now=T0)
    again, created_again = store.put(data, "second", now=T0 + dt.timedelta(hours=1))
    assert (created_first, created_again) == (True, False)
    assert again == first  # the first upload's name and time stay
    assert sorted(bytes_client.scan_iter("*")) == sorted(
        [keys.asset(first.id).encode(), keys.asset_meta(first.id).encode(), b"blanco:cfg:assets"]
    )
    assert store.list() == [first]


def test_unnamed_upload_gets_a_name_from_its_id(store: AssetStore) -> None:
    asset, _ = store.put(image_bytes("WEBP"))
    assert asset.name == asset.id.removeprefix("sha256:")[:12] + ".webp"


@pytest.mark.parametrize(
    "data",
    [
        b"not an image",
        image_bytes("PNG")[:-20],
        image_bytes("BMP"),
        png_declaring(100_000, 100_000),
        image_bytes("PNG", (600, 600)),  # over max_pixels
        image_bytes("BMP", (200, 200)),  # over max_bytes
    ],
    ids=["garbage", "truncated", "bmp", "bomb", "too-many-pixels", "too-many-bytes"],
)
def test_refused_images_store_nothing(
    store: AssetStore, bytes_client: redis.Redis, data: bytes
) -> None:
    with pytest.raises(InvalidInput) as caught:
        store.put(data, "bad", field="file")
    assert [e.pointer for e in caught.value.errors] == ["/file"]
    assert list(bytes_client.scan_iter("*")) == []


def test_get_bytes_is_one_round_trip_per_node(
    store: AssetStore, bytes_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    png, gif, webp = image_bytes("PNG"), image_bytes("GIF"), image_bytes("WEBP")
    ids = [store.put(data)[0].id for data in (png, gif, webp)]
    unknown = "sha256:" + "0" * 64
    trips = RoundTrips(monkeypatch)
    found = store.get_bytes([*ids, unknown, "not-an-id", ids[0]])
    assert found == {ids[0]: png, ids[1]: gif, ids[2]: webp}
    nodes = {node_name(bytes_client, keys.asset(i)) for i in [*ids, unknown]}
    assert trips.total == len(nodes)
    assert store.get_bytes([]) == {}
    assert store.get_bytes(["not-an-id"]) == {}
    assert trips.total == len(nodes)  # nothing to fetch, nothing sent


def test_get_content_is_one_round_trip(store: AssetStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = image_bytes("PNG")
    asset, _ = store.put(data)
    trips = RoundTrips(monkeypatch)
    assert store.get_content(asset.id) == (asset, data)
    assert trips.total == 1
    assert store.get_content("sha256:" + "1" * 64) is None


def test_get_unknown_or_malformed(store: AssetStore) -> None:
    assert store.get("sha256:" + "a" * 64) is None
    assert store.get("sha256:ABC") is None
    assert store.get("*") is None
    with pytest.raises(NotFound):
        store.require("sha256:" + "a" * 64)


def test_list_oldest_first(store: AssetStore) -> None:
    later, _ = store.put(image_bytes("PNG", color="#000000"), now=T0 + dt.timedelta(days=1))
    earlier, _ = store.put(image_bytes("PNG", color="#FFFFFF"), now=T0)
    assert store.list() == [earlier, later]


def test_delete(store: AssetStore, bytes_client: redis.Redis) -> None:
    kept, _ = store.put(image_bytes("PNG", color="#010203"))
    doomed, _ = store.put(image_bytes("PNG", color="#040506"))
    store.delete(doomed.id)
    assert store.get(doomed.id) is None
    assert store.get_bytes([doomed.id, kept.id]) == {kept.id: image_bytes("PNG", color="#010203")}
    assert store.list() == [kept]
    assert bytes_client.exists(keys.asset(doomed.id), keys.asset_meta(doomed.id)) == 0
    with pytest.raises(NotFound):
        store.delete(doomed.id)
    with pytest.raises(NotFound):
        store.delete("../../etc")


def test_upload_again_after_delete(store: AssetStore) -> None:
    data = image_bytes("GIF")
    asset, _ = store.put(data, "one")
    store.delete(asset.id)
    again, created = store.put(data, "two")
    assert created
    assert again.name == "two"
