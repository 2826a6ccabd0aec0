"""Uploaded image assets in Redis, stored once per distinct content.

An asset's bytes and metadata share the hash tag ``{a:<id>}``, so they are written in one
transaction; the index of ids lives in another slot and is updated after them (an asset whose
index entry was lost to a crash is listed again when it is uploaded again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import redis

from models.assets.image_validation import ImageLimits, validate_image
from models.assets.metadata import Asset, asset_id_for, default_name, valid_asset_id
from models.campaigns.specs import utc_now
from models.errors import NotFound
from models.storage import keys
from models.storage.batch import Batch
from models.storage.config_versions import announce_config


class AssetStore:
    """Validates, stores and serves uploaded images. Expects a ``decode_responses=False`` client."""

    def __init__(self, client: redis.Redis, limits: ImageLimits) -> None:
        self.redis = client
        self.limits = limits

    def put(
        self,
        data: bytes,
        name: str | None = None,
        *,
        field: str = "data",
        now: dt.datetime | None = None,
    ) -> tuple[Asset, bool]:
        """Store an image; return its asset and whether it is new.

        Idempotent: the same bytes give the same id and are stored once; a repeat upload keeps
        the first upload's name and time. Raises InvalidInput (pointing at ``field``) and stores
        nothing when the bytes are not an allowed image within the limits.
        """
        facts = validate_image(data, self.limits, field)
        asset_id = asset_id_for(data)
        asset = Asset(
            id=asset_id,
            media_type=facts.media_type,
            width=facts.width,
            height=facts.height,
            frames=facts.frames,
            bytes=len(data),
            created_at=now or utc_now(),
            name=name or default_name(asset_id, facts.media_type),
        )
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.asset_meta(asset_id), asset.model_dump_json(by_alias=True), nx=True)
            pipe.set(keys.asset(asset_id), data, nx=True)
            pipe.get(keys.asset_meta(asset_id))
            created, _, stored = pipe.execute()
        self.redis.sadd(keys.ASSET_INDEX, asset_id)
        if created:
            return asset, True
        return Asset.model_validate_json(stored), False

    def get(self, asset_id: str) -> Asset | None:
        """An asset's metadata, or None."""
        if not valid_asset_id(asset_id):
            return None
        document = self.redis.get(keys.asset_meta(asset_id))
        return Asset.model_validate_json(document) if document else None

    def require(self, asset_id: str) -> Asset:
        """An asset's metadata, or NotFound."""
        asset = self.get(asset_id)
        if asset is None:
            raise NotFound(f"no asset {asset_id!r}")
        return asset

    def get_content(self, asset_id: str) -> tuple[Asset, bytes] | None:
        """An asset's metadata and bytes (one round-trip), or None."""
        if not valid_asset_id(asset_id):
            return None
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.asset_meta(asset_id))
            pipe.get(keys.asset(asset_id))
            document, data = pipe.execute()
        if not document or data is None:
            return None
        return Asset.model_validate_json(document), bytes(data)

    def get_bytes(self, asset_ids: Iterable[str]) -> dict[str, bytes]:
        """The bytes of each stored asset among ``asset_ids`` (one round trip per node)."""
        wanted = sorted({i for i in asset_ids if valid_asset_id(i)})
        if not wanted:
            return {}
        batch = Batch(self.redis)  # one round trip per node holding any of them
        for asset_id in wanted:
            batch.get(keys.asset(asset_id))
        found = batch.execute()
        return {i: bytes(data) for i, data in zip(wanted, found, strict=True) if data is not None}

    def list(self) -> list[Asset]:
        """Every asset, oldest first."""
        ids = sorted(member.decode() for member in self.redis.smembers(keys.ASSET_INDEX))
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for asset_id in ids:
                pipe.get(keys.asset_meta(asset_id))
            documents = pipe.execute()
        assets = [Asset.model_validate_json(d) for d in documents if d]
        return sorted(assets, key=lambda a: (a.created_at, a.id))

    def delete(self, asset_id: str) -> None:
        """Delete an asset's bytes and metadata; NotFound if there is none with that id."""
        if not valid_asset_id(asset_id):
            raise NotFound(f"no asset {asset_id!r}")
        removed = self.redis.delete(keys.asset_meta(asset_id), keys.asset(asset_id))
        self.redis.srem(keys.ASSET_INDEX, asset_id)
        announce_config(self.redis)
        if not removed:
            raise NotFound(f"no asset {asset_id!r}")
