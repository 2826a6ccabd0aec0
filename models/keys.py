"""Every Redis key Blanco uses, in one place.

Keys are namespaced under ``blanco:``. A hash tag (``{c:<campaign>}`` or ``{r:<recipient>}``)
keeps the keys of one campaign, or of one recipient, on one Redis Cluster slot, so that their
multi-key operations (transactions, pipelines, erasure) stay on a single node.
"""

from __future__ import annotations

PREFIX = "blanco"

CAMPAIGN_INDEX = f"{PREFIX}:cfg:campaigns"
API_KEYS = f"{PREFIX}:cfg:api-keys"


def _campaign(campaign_id: str) -> str:
    return f"{PREFIX}:cfg:{{c:{campaign_id}}}"


def campaign(campaign_id: str) -> str:
    """JSON document of a campaign."""
    return f"{_campaign(campaign_id)}:campaign"


def block_index(campaign_id: str) -> str:
    """Set of the block ids in a campaign."""
    return f"{_campaign(campaign_id)}:blocks"


def block(campaign_id: str, block_id: str) -> str:
    """JSON document of the current version of a block."""
    return f"{_campaign(campaign_id)}:block:{block_id}"


def block_versions(campaign_id: str, block_id: str) -> str:
    """Hash of version number -> JSON document of that block version."""
    return f"{_campaign(campaign_id)}:block:{block_id}:versions"


def block_version_counter(campaign_id: str, block_id: str) -> str:
    """Counter that numbers block versions; survives deleting and re-creating a block."""
    return f"{_campaign(campaign_id)}:block:{block_id}:version-counter"


def campaign_events(campaign_id: str) -> str:
    """Stream of open, click and decision events of a campaign."""
    return f"{PREFIX}:ev:{{c:{campaign_id}}}:events"


def _recipient(recipient_id: str) -> str:
    return f"{PREFIX}:rcp:{{r:{recipient_id}}}"


def profile(recipient_id: str) -> str:
    """Hash of profile attribute -> JSON value."""
    return f"{_recipient(recipient_id)}:profile"


def scores(recipient_id: str) -> str:
    """Hash of model name -> JSON score record."""
    return f"{_recipient(recipient_id)}:scores"


def segments(recipient_id: str) -> str:
    """Set of segment names the recipient belongs to."""
    return f"{_recipient(recipient_id)}:segments"


def decisions(recipient_id: str) -> str:
    """Hash of ``<campaign>/<block>`` -> JSON decision record."""
    return f"{_recipient(recipient_id)}:decisions"


def recipient_keys(recipient_id: str) -> list[str]:
    """All keys that hold data about one recipient (erasure deletes these)."""
    return [
        profile(recipient_id),
        scores(recipient_id),
        segments(recipient_id),
        decisions(recipient_id),
    ]


def render_cache(digest: str) -> str:
    """Encoded image bytes of one render, by a hash of its inputs."""
    return f"{PREFIX}:render:{digest}"
