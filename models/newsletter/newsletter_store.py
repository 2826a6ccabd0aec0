"""Newsletter definitions and their suppression lists in Redis, in the campaign's hash slot."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import redis

from models.campaigns.specs import utc_now
from models.errors import NotFound
from models.newsletter.newsletters import Newsletter, NewsletterSpec
from models.storage import keys
from models.storage.config_versions import announce_config


@lru_cache(maxsize=256)
def parse_newsletter(document: str) -> Newsletter:
    """Parse a stored newsletter; cached, because every slot fetch reads it."""
    return Newsletter.model_validate_json(document)


class NewsletterStore:
    """Reads and writes newsletters. Expects a client with ``decode_responses=True``."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def put(self, campaign_id: str, spec: NewsletterSpec) -> tuple[Newsletter, bool]:
        """Store the campaign's newsletter as its next version; return it and whether it is
        new. NotFound if the campaign does not exist."""
        if not self.redis.exists(keys.campaign(campaign_id)):
            raise NotFound(f"no campaign {campaign_id!r}")
        current = self.get(campaign_id)
        newsletter = Newsletter(
            **spec.model_dump(by_alias=True, exclude_none=True),
            campaign_id=campaign_id,
            version=current.version + 1 if current else 1,
            updated_at=utc_now(),
        )
        self.redis.set(
            keys.newsletter(campaign_id),
            newsletter.model_dump_json(by_alias=True, exclude_none=True),
        )
        announce_config(self.redis)
        return newsletter, current is None

    def get(self, campaign_id: str) -> Newsletter | None:
        """The campaign's newsletter, or None."""
        document = self.redis.get(keys.newsletter(campaign_id))
        return parse_newsletter(document) if document else None

    def require(self, campaign_id: str) -> Newsletter:
        """The campaign's newsletter, or NotFound."""
        newsletter = self.get(campaign_id)
        if newsletter is None:
            raise NotFound(f"campaign {campaign_id!r} has no newsletter")
        return newsletter

    def delete(self, campaign_id: str) -> None:
        """Remove the newsletter (its sends stay, for reports); NotFound if there is none."""
        if not self.redis.delete(keys.newsletter(campaign_id)):
            raise NotFound(f"campaign {campaign_id!r} has no newsletter")
        announce_config(self.redis)

    def suppress(self, campaign_id: str, recipient_ids: Iterable[str]) -> int:
        """Leave recipients out of the audience; return how many were newly suppressed."""
        ids = list(recipient_ids)
        return int(self.redis.sadd(keys.suppressions(campaign_id), *ids)) if ids else 0

    def unsuppress(self, campaign_id: str, recipient_id: str) -> bool:
        """Take a recipient off the suppression list; whether they were on it."""
        return bool(self.redis.srem(keys.suppressions(campaign_id), recipient_id))

    def suppressed_count(self, campaign_id: str) -> int:
        """How many recipients are suppressed."""
        return int(self.redis.scard(keys.suppressions(campaign_id)))
