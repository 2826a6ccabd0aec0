"""Campaigns and versioned blocks in Redis.

Every write to a block stores a new numbered version; the current version and the recent
history live in the campaign's hash slot, so the write is one transaction.
"""

from __future__ import annotations

from functools import lru_cache

import redis

from models.campaigns.experiments import HOLDOUT_ARM
from models.campaigns.specs import (
    MAX_PIXELS_PER_BLOCK,
    Block,
    BlockSpec,
    Campaign,
    CampaignSpec,
    utc_now,
    variant_order,
)
from models.errors import Conflict, FieldError, InvalidInput, NotFound, PreconditionFailed
from models.storage import keys
from models.storage.batch import Batch
from models.storage.config_versions import announce_config


@lru_cache(maxsize=1024)
def parse_block(document: str) -> Block:
    """Parse a stored block document; cached, because open-time routes read them constantly."""
    return Block.model_validate_json(document)


class CampaignStore:
    """Reads and writes campaigns and blocks. Expects a client with ``decode_responses=True``."""

    def __init__(
        self, client: redis.Redis, history: int = 200, max_pixels: int = MAX_PIXELS_PER_BLOCK
    ) -> None:
        self.redis = client
        self.history = history
        self.max_pixels = max_pixels

    # campaigns

    def create_campaign(self, spec: CampaignSpec) -> Campaign:
        """Store a new campaign; Conflict if the id is taken."""
        now = utc_now()
        campaign = Campaign(**spec.model_dump(), created_at=now, updated_at=now)
        if not self.redis.set(
            keys.campaign(spec.id), campaign.model_dump_json(by_alias=True), nx=True
        ):
            raise Conflict(f"campaign {spec.id!r} already exists")
        self.redis.sadd(keys.CAMPAIGN_INDEX, spec.id)
        announce_config(self.redis)
        return campaign

    def get_campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign, or None."""
        document = self.redis.get(keys.campaign(campaign_id))
        return Campaign.model_validate_json(document) if document else None

    def require_campaign(self, campaign_id: str) -> Campaign:
        """The campaign, or NotFound."""
        campaign = self.get_campaign(campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return campaign

    def list_campaigns(self) -> list[Campaign]:
        """All campaigns, by id."""
        ids = sorted(self.redis.smembers(keys.CAMPAIGN_INDEX))
        batch = Batch(self.redis)  # one key per campaign, on many nodes of a cluster
        for campaign_id in ids:
            batch.get(keys.campaign(campaign_id))
        return [Campaign.model_validate_json(d) for d in batch.execute() if d]

    def update_campaign(self, spec: CampaignSpec) -> Campaign:
        """Replace a campaign's settings; NotFound if it does not exist."""
        current = self.require_campaign(spec.id)
        campaign = Campaign(
            **spec.model_dump(), created_at=current.created_at, updated_at=utc_now()
        )
        self.redis.set(keys.campaign(spec.id), campaign.model_dump_json(by_alias=True), xx=True)
        announce_config(self.redis)
        return campaign

    def delete_campaign(self, campaign_id: str) -> None:
        """Delete a campaign with all its blocks and their history."""
        self.require_campaign(campaign_id)
        block_ids = self.redis.smembers(keys.block_index(campaign_id))
        doomed = [keys.campaign(campaign_id), keys.block_index(campaign_id)]
        for block_id in block_ids:
            doomed += [
                keys.block(campaign_id, block_id),
                keys.block_versions(campaign_id, block_id),
            ]
        self.redis.delete(*doomed)  # one hash slot: the campaign's
        self.redis.srem(keys.CAMPAIGN_INDEX, campaign_id)
        announce_config(self.redis)

    # blocks

    def put_block(
        self,
        campaign_id: str,
        spec: BlockSpec,
        expected_version: int | None = None,
        *,
        create_only: bool = False,
    ) -> tuple[Block, bool]:
        """Store ``spec`` as the block's next version; return it and whether it is new.

        With ``expected_version``, refuse (PreconditionFailed) unless that is the current
        version, so two admins cannot overwrite each other's edits unknowingly.
        """
        self.require_campaign(campaign_id)
        if spec.width * spec.height > self.max_pixels:
            raise InvalidInput(
                "the block is larger than this server allows",
                [FieldError(("height",), f"width × height must be at most {self.max_pixels}")],
            )
        control = spec.experiment.control if spec.experiment else None
        if control is not None and spec.variant(control) is None:
            holding_out = spec.experiment is not None and spec.experiment.holdout > 0
            if control != HOLDOUT_ARM or not holding_out:
                raise InvalidInput(
                    "the experiment's control is not one of its arms",
                    [
                        FieldError(
                            ("experiment", "control"),
                            f"{control!r} is neither a variant of the block nor `holdout` "
                            "(which needs a holdout share above 0)",
                        )
                    ],
                )
        block_key = keys.block(campaign_id, spec.id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(block_key)
                    current = pipe.get(block_key)
                    if create_only and current:
                        raise Conflict(
                            f"block {spec.id!r} already exists in campaign {campaign_id!r}"
                        )
                    previous = parse_block(current) if current else None
                    current_version = previous.version if previous else None
                    if expected_version is not None and expected_version != current_version:
                        raise PreconditionFailed(
                            f"block {spec.id!r} is at version {current_version}, "
                            f"not {expected_version}"
                        )
                    version = int(pipe.incr(keys.block_version_counter(campaign_id, spec.id)))
                    block = Block(
                        **spec.model_dump(by_alias=True, exclude_none=True),
                        campaign_id=campaign_id,
                        version=version,
                        updated_at=utc_now(),
                        variant_order=variant_order(previous, spec),
                    )
                    document = block.model_dump_json(by_alias=True, exclude_none=True)
                    pipe.multi()
                    pipe.set(block_key, document)
                    versions_key = keys.block_versions(campaign_id, spec.id)
                    pipe.hset(versions_key, str(version), document)
                    if version > self.history:
                        pipe.hdel(versions_key, str(version - self.history))
                    pipe.sadd(keys.block_index(campaign_id), spec.id)
                    pipe.execute()
                    announce_config(self.redis)
                    return block, current is None
                except redis.WatchError:
                    continue

    def create_block(self, campaign_id: str, spec: BlockSpec) -> Block:
        """Store a new block; Conflict if the id is taken."""
        block, _ = self.put_block(campaign_id, spec, create_only=True)
        return block

    def get_block(self, campaign_id: str, block_id: str) -> Block | None:
        """The current version of a block, or None."""
        document = self.redis.get(keys.block(campaign_id, block_id))
        return parse_block(document) if document else None

    def require_block(self, campaign_id: str, block_id: str) -> Block:
        """The current version of a block, or NotFound."""
        self.require_campaign(campaign_id)
        block = self.get_block(campaign_id, block_id)
        if block is None:
            raise NotFound(f"no block {block_id!r} in campaign {campaign_id!r}")
        return block

    def get_block_version(self, campaign_id: str, block_id: str, version: int) -> Block | None:
        """A past (or the current) version of a block, while the history keeps it."""
        document = self.redis.hget(keys.block_versions(campaign_id, block_id), str(version))
        return parse_block(document) if document else None

    def list_block_versions(self, campaign_id: str, block_id: str) -> list[int]:
        """The version numbers still kept, oldest first."""
        return sorted(int(v) for v in self.redis.hkeys(keys.block_versions(campaign_id, block_id)))

    def list_blocks(self, campaign_id: str) -> list[Block]:
        """The current version of every block of a campaign, by id."""
        self.require_campaign(campaign_id)
        ids = sorted(self.redis.smembers(keys.block_index(campaign_id)))
        documents = self.redis.mget([keys.block(campaign_id, i) for i in ids]) if ids else []
        return [parse_block(d) for d in documents if d]

    def delete_block(self, campaign_id: str, block_id: str) -> None:
        """Delete a block; its version history stays so that old clicks still resolve. The
        stored document is not parsed, so that one that cannot be read can still be removed."""
        self.require_campaign(campaign_id)
        if not self.redis.exists(keys.block(campaign_id, block_id)):
            raise NotFound(f"no block {block_id!r} in campaign {campaign_id!r}")
        self.redis.delete(keys.block(campaign_id, block_id))
        self.redis.srem(keys.block_index(campaign_id), block_id)
        announce_config(self.redis)
