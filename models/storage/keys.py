"""Every Redis key Blanco uses, in one place.

Keys are namespaced under ``blanco:``. A hash tag (``{c:<campaign>}``, ``{a:<asset>}`` or
``{r:<recipient>}``) keeps the keys of one campaign, asset or recipient on one Redis Cluster
slot, so that their multi-key operations (transactions, pipelines, erasure) stay on one node.
"""

from __future__ import annotations

from models.storage.slots import slot_of, slot_tag

PREFIX = "blanco"

CAMPAIGN_INDEX = f"{PREFIX}:cfg:campaigns"
API_KEYS = f"{PREFIX}:cfg:api-keys"
ASSET_INDEX = f"{PREFIX}:cfg:assets"
"""Set of the ids (``sha256:<hex>``) of the uploaded image assets."""
FEED_INDEX = f"{PREFIX}:cfg:feeds"
"""Set of the ids of the content feeds."""
PERSONA_RULES = f"{PREFIX}:cfg:personas"
"""JSON document (``models.recipients.segmentation.PersonaRules``): the rules that assign a
persona."""


CONFIG_VERSION = f"{PREFIX}:cfg:{{versions}}:config"
"""Counter that every write of open-time configuration moves (campaigns, blocks, newsletters,
sends, feeds, assets): each worker checks it about once a second and re-reads what it holds
(``models.config_cache``)."""
PRIVACY_VERSION = f"{PREFIX}:cfg:{{versions}}:privacy"
"""Counter that every erasure moves: workers then drop the personal renders they hold."""

LIVE_SOURCES = f"{PREFIX}:cfg:{{live}}:sources"
"""Hash of live source name -> JSON document (``models.campaigns.live_data.LiveSource``): the
values the data team pushed, their freshness limit and the time of the push."""
LIVE_VERSION = f"{PREFIX}:cfg:{{live}}:version"
"""A random token that changes with every write to ``LIVE_SOURCES`` (same slot, one
``MULTI``): workers check it with the configuration counters (``models.config_cache``) and
reload the sources only when it moved."""


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


def newsletter(campaign_id: str) -> str:
    """JSON document of a campaign's newsletter definition (schedule, audience, slots)."""
    return f"{_campaign(campaign_id)}:newsletter"


def suppressions(campaign_id: str) -> str:
    """Set of the recipient ids that the newsletter's audience leaves out."""
    return f"{_campaign(campaign_id)}:suppressed"


def send_index(campaign_id: str) -> str:
    """Sorted set of the newsletter's send ids, scored by their send time (Unix seconds)."""
    return f"{_campaign(campaign_id)}:sends"


def send(campaign_id: str, send_id: str) -> str:
    """JSON document of one send (``models.newsletter.sends.Send``)."""
    return f"{_campaign(campaign_id)}:send:{send_id}"


def send_members(campaign_id: str, send_id: str) -> str:
    """Set of the recipient ids a send was exported for."""
    return f"{_campaign(campaign_id)}:send:{send_id}:members"


def send_holdout(campaign_id: str, send_id: str) -> str:
    """Set of the recipient ids a send held out (not exported: the control group)."""
    return f"{_campaign(campaign_id)}:send:{send_id}:holdout"


def send_considered(campaign_id: str, send_id: str) -> str:
    """Set of the recipient ids an export has looked at so far (deleted when it ends): SCAN may
    return a key twice, and each recipient must be counted and written once."""
    return f"{_campaign(campaign_id)}:send:{send_id}:considered"


def send_export_lock(campaign_id: str, send_id: str) -> str:
    """Held while a send's audience is being exported (one export of a send at a time)."""
    return f"{_campaign(campaign_id)}:send:{send_id}:exporting"


def _feed(feed_id: str) -> str:
    return f"{PREFIX}:cfg:{{f:{feed_id}}}"


def feed_items(feed_id: str) -> str:
    """Hash of item id -> JSON content item."""
    return f"{_feed(feed_id)}:items"


def feed_version(feed_id: str) -> str:
    """Counter that moves on every change to the feed's items."""
    return f"{_feed(feed_id)}:version"


MEASUREMENT_SHARDS = 16
"""A campaign's events and counters are split over this many shards (by recipient), each its own
hash slot, so that one busy campaign's counting spreads over the nodes of a Redis Cluster. A
recipient always falls in the same shard, so unique counts of the shards add up."""
Shard = int
"""A measurement shard: 0 to ``MEASUREMENT_SHARDS`` - 1."""
SHARDS_READ: tuple[Shard, ...] = tuple(range(MEASUREMENT_SHARDS))
"""Every shard a report reads."""


def _measured(campaign_id: str, shard: Shard) -> str:
    return f"{PREFIX}:ev:{{e:{campaign_id}:{shard}}}"


def campaign_events(campaign_id: str, shard: Shard) -> str:
    """Stream of a campaign's open, click and view events (with the decision they showed), one
    per shard."""
    return f"{_measured(campaign_id, shard)}:events"


def stats_counts(campaign_id: str, day: str, shard: Shard) -> str:
    """Hash of ``event|block|variant|client|kind`` -> count for one UTC day (or send bucket)."""
    return f"{_measured(campaign_id, shard)}:{day}:counts"


def stats_unique(
    campaign_id: str, day: str, event: str, block_id: str, variant: str, shard: Shard
) -> str:
    """HyperLogLog of the (pseudonymous) recipients behind an event on one day (the
    approximate trend figures)."""
    return f"{_measured(campaign_id, shard)}:{day}:unique:{event}:{block_id}:{variant}"


def arm_flags(campaign_id: str, scope: str, block_id: str, arm: str, shard: Shard) -> str:
    """Hash of recipient pseudonym -> what they did in one arm of a block, in one scope (the
    experiment to date, or a send): ``models.measurement.arm_counts``."""
    return f"{_measured(campaign_id, shard)}:{scope}:arm:{block_id}:{arm}"


def arm_counts(campaign_id: str, scope: str, shard: Shard) -> str:
    """Hash of ``block|arm|count`` -> exact distinct recipients, in one scope."""
    return f"{_measured(campaign_id, shard)}:{scope}:arms"


def money_counts(campaign_id: str, scope: str, shard: Shard) -> str:
    """Hash of ``basis|block|arm|figure`` -> orders, converters, revenue (minor units of the
    reporting currency) and the sum of squared revenue per converter, in one scope
    (``models.conversions.money_counts``)."""
    return f"{_measured(campaign_id, shard)}:{scope}:money"


def money_orders(campaign_id: str, scope: str, shard: Shard) -> str:
    """Hash of ``<pseudonym>|<hash of the order id>`` -> the minor units it was counted with, in
    one scope: counting an order again changes nothing, a new value counts the difference."""
    return f"{_measured(campaign_id, shard)}:{scope}:money-orders"


def money_by_recipient(campaign_id: str, scope: str, shard: Shard) -> str:
    """Hash of ``basis|block|arm|<pseudonym>`` -> the minor units counted for that recipient,
    in one scope (converters, and the spread of revenue per recipient)."""
    return f"{_measured(campaign_id, shard)}:{scope}:money-recipients"


def _asset(asset_id: str) -> str:
    return f"{PREFIX}:cfg:{{a:{asset_id}}}"


def asset(asset_id: str) -> str:
    """The bytes of an uploaded image asset, as uploaded (read with a bytes client)."""
    return f"{_asset(asset_id)}:bytes"


def asset_meta(asset_id: str) -> str:
    """JSON document (``models.assets.metadata.Asset``) describing an uploaded image asset."""
    return f"{_asset(asset_id)}:meta"


RECIPIENT_KEY_PATTERN = f"{PREFIX}:rcp:{{r:*}}:*"
"""SCAN pattern matching every recipient-level key (``{`` and ``}`` are not glob syntax)."""
PROFILE_KEY_PATTERN = f"{PREFIX}:rcp:{{r:*}}:profile"
"""SCAN pattern matching every profile key."""
_RECIPIENT_KEY_START = f"{PREFIX}:rcp:{{r:"


def _recipient(recipient_id: str) -> str:
    return f"{_RECIPIENT_KEY_START}{recipient_id}}}"


def recipient_of(key: str) -> tuple[str, str] | None:
    """(recipient id, kind) of a recipient-level key, e.g. ``("anna", "profile")``; else None."""
    if not key.startswith(_RECIPIENT_KEY_START):
        return None
    recipient_id, found, kind = key[len(_RECIPIENT_KEY_START) :].partition("}:")
    return (recipient_id, kind) if found else None


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


def transactions(recipient_id: str) -> str:
    """Hash of order id -> JSON transaction (``models.recipients.customer_data.Transaction``
    without the recipient id)."""
    return f"{_recipient(recipient_id)}:transactions"


def events(recipient_id: str) -> str:
    """Hash of event key (the event id, or ``#<hash>`` of its content) -> JSON event."""
    return f"{_recipient(recipient_id)}:events"


def events_by_time(recipient_id: str) -> str:
    """Sorted set of the recipient's newest events: member ``<type>|<event key>``, score the
    event's time in Unix seconds."""
    return f"{_recipient(recipient_id)}:events-by-time"


def rankings(recipient_id: str) -> str:
    """Hash of ``<campaign>/<send>`` -> JSON list of the content item ids ranked for the
    newsletter's slots (computed once per recipient and send, shared by every slot)."""
    return f"{_recipient(recipient_id)}:rankings"


def recent_clicks(recipient_id: str) -> str:
    """Sorted set of the recipient's clicks of the last minute: member
    ``<campaign>|<send>|<link>``, score the click's Unix time (for "every link at once")."""
    return f"{_recipient(recipient_id)}:recent-clicks"


def bought(recipient_id: str) -> str:
    """Set of what the recipient has bought: the item ids of their orders, and
    ``category:<c>`` for the categories of their orders and items (the newsletter's
    exclusions)."""
    return f"{_recipient(recipient_id)}:bought"


def item_clicks(recipient_id: str) -> str:
    """Hash of newsletter item id -> Unix time of the recipient's last click on it (fatigue)."""
    return f"{_recipient(recipient_id)}:item-clicks"


def last_click(recipient_id: str) -> str:
    """The recipient's last human click (``models.conversions.touches``), kept for the click
    attribution window."""
    return f"{_recipient(recipient_id)}:last-click"


def last_view(recipient_id: str) -> str:
    """The recipient's last human open (``models.conversions.touches``), kept for the
    view-through window."""
    return f"{_recipient(recipient_id)}:last-view"


def attributions(recipient_id: str) -> str:
    """Hash of order id -> JSON attribution, fixed when the order first arrived
    (``models.conversions.attribution``)."""
    return f"{_recipient(recipient_id)}:attributions"


def click_ids(recipient_id: str) -> str:
    """Sorted set of the ids of the recipient's click references still kept (score: Unix time
    of the click), so that erasure finds them."""
    return f"{_recipient(recipient_id)}:click-ids"


def click_ref(slot: int, click_id: str) -> str:
    """A click reference: what a click redirect's attribution token points to (the recipient
    and the click), kept for the click window. It lives in the recipient's slot (a tag of that
    slot, not their id, since the token names only the slot and the click)."""
    return f"{PREFIX}:clk:{{{slot_tag(slot)}}}:{click_id}"


def click_ref_orders(slot: int, click_id: str) -> str:
    """Set of the orders a click's token reported through the pixel (keyed hashes of their
    ids), kept for the click window, which bounds how many it may report."""
    return f"{click_ref(slot, click_id)}:orders"


def recipient_keys(recipient_id: str) -> list[str]:
    """All keys that hold data about one recipient (erasure deletes these)."""
    return [
        profile(recipient_id),
        scores(recipient_id),
        segments(recipient_id),
        decisions(recipient_id),
        transactions(recipient_id),
        events(recipient_id),
        events_by_time(recipient_id),
        rankings(recipient_id),
        recent_clicks(recipient_id),
        bought(recipient_id),
        item_clicks(recipient_id),
        last_click(recipient_id),
        last_view(recipient_id),
        attributions(recipient_id),
        click_ids(recipient_id),
    ]


def render_cache_bytes(window: int) -> str:
    """Bytes admitted to the render cache in one TTL window (enforces the memory cap)."""
    return f"{PREFIX}:render-bytes:{window}"


def render_cache(digest: str) -> str:
    """Encoded image bytes of one render, by a hash of its inputs."""
    return f"{PREFIX}:render:{digest}"


def recipient_slot(recipient_id: str) -> int:
    """The Redis Cluster slot of every key of one recipient."""
    return slot_of(f"r:{recipient_id}")


def erased_marks(recipient_id: str) -> str:
    """Set of the tombstones of erased recipients (``models.recipients.tombstones``: a keyed
    hash of the id per signing key, never the id) whose keys share this recipient's slot; its
    hash tag is a tag of that slot (``models.storage.slots``), so the open's read of the recipient
    checks it on the same node, and the key names nobody. Kept without a TTL: an erased id
    stays refused."""
    return f"{PREFIX}:privacy:{{{slot_tag(recipient_slot(recipient_id))}}}:erased"


ERASED_RECIPIENTS_V1 = f"{PREFIX}:privacy:erased"
"""The one set of tombstones that Blanco 0.1 kept: never written now, read once per worker and
checked in memory (``Tombstones.legacy_marks``)."""
ERASURE_AUDIT = f"{PREFIX}:audit:erasures"
"""Stream of erasures (time, API key, request id, keys removed), bounded, without recipient ids."""
