"""Recording conversions: store the order, credit it to an email, count its money.

Every way a conversion arrives (the admin API one by one or in bulk, the shop's pixel or script,
a Segment or RudderStack ``Order Completed`` webhook, the transactions import) ends in
``Conversions.record``:

1. The order is stored as the recipient's transaction (idempotent by order id; segmentation
   and the newsletter's exclusions read it there).
2. It is credited (``models.conversions.attribution``) from the recipient's last touches and
   the click its attribution token names, in one round trip; an order already credited keeps
   its credit.
3. Its value, in the reporting currency (``BLANCO_SEGMENTATION_CURRENCY``, converted with the
   configured rates), is counted per block and arm (``models.conversions.money_counts``) for
   the campaign to date and for the send of its touch; and, for every newsletter send of the
   click window before it that the recipient was a member of, or held out from, under
   ``exposed`` (members against holdout: incremental revenue). Counting is idempotent too, so
   sending an order again counts only a changed value.

Refunds are stored as transactions but not credited: attributed revenue is what was ordered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.exceptions import NoScriptError

from models.conversions.attribution import Attribution, Windows, attribute
from models.conversions.click_refs import ClickRef, ReferencedClick, parse_ref
from models.conversions.inputs import ConversionIn
from models.conversions.money_counts import count_commands, load_script, to_minor
from models.conversions.touches import Touch
from models.errors import Refusal, RowsRefused
from models.measurement.arm_counts import EXPERIMENT_SCOPE, Scope, persona_scope, send_scope
from models.measurement.stats import shard_of
from models.newsletter.newsletters import SLOT_BLOCK_PREFIX
from models.newsletter.sends import Send, SendStore
from models.recipients.customer_data import Transaction
from models.recipients.customer_data_store import CustomerDataStore
from models.recipients.recipient_store import decode_profile
from models.recipients.segmentation import PERSONA_ATTRIBUTE
from models.recipients.tombstones import ERASED_DETAIL, ErasedRecipients
from models.storage import keys
from models.storage.batch import Batch, Command

SEND_BLOCK = "_send"
"""The block under which a send's exposure (members against holdout) is counted."""
MEMBERS_ARM, HOLDOUT_ARM = "members", "holdout"


@dataclass(frozen=True)
class Credited:
    """What became of one recorded order."""

    order_id: str
    recipient_id: str
    attribution: Attribution
    value: Decimal | None
    """In the reporting currency; None when it could not be converted (no rate)."""
    note: str | None = None
    """Why the order's money was not counted, if it was not."""

    def as_dict(self) -> dict[str, Any]:
        """As the API shows it."""
        return {
            "order_id": self.order_id,
            "recipient_id": self.recipient_id,
            "attribution": self.attribution.as_dict(),
            "value": str(self.value) if self.value is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Recorded:
    """The outcome of ``Conversions.record``."""

    stored: int
    credited: list[Credited]


ALREADY_RECORDED = "the order is already recorded: only a keyed way in may change it"


class Conversions:
    """Stores, credits and counts conversions. Expects a ``decode_responses=True`` client."""

    def __init__(
        self,
        client: Any,
        customer_data: CustomerDataStore,
        *,
        pseudonym: Callable[[str], str],
        order_key: Callable[[str, str], str],
        rates: Callable[[], Mapping[str, Decimal]],
        currency: str,
        windows: Windows,
        retention_days: int,
        sends: SendStore,
    ) -> None:
        self.redis = client
        self.customer_data = customer_data
        self.pseudonym = pseudonym
        self.order_key = order_key
        self.rates = rates
        self.currency = currency
        self.windows = windows
        self.ttl = retention_days * 86400
        self.sends = sends

    def referenced_click(self, ref: ClickRef) -> ReferencedClick | None:
        """Whose click an attribution token names, while the reference is kept."""
        return parse_ref(self.redis.get(ref.key))

    def record(
        self,
        transactions: Sequence[Transaction],
        refs: Mapping[tuple[str, str], ClickRef] | None = None,
    ) -> Recorded:
        """Store ``transactions``, and credit and count their orders; ``refs`` maps a
        (recipient, order id) to the click its attribution token names. Raises ErasedRecipients
        (after storing and crediting the others) when some recipients were erased."""
        recorded, erased = self._record(transactions, refs or {})
        if erased is not None:
            raise erased
        return recorded

    def record_incoming(
        self,
        conversions: Sequence[ConversionIn],
        refs: Sequence[ClickRef | None],
        now: dt.datetime,
        *,
        replace: bool = True,
    ) -> Recorded:
        """Record conversions as they arrived, each with the reference its attribution token
        names (None: no token, or not a genuine one): a conversion without a recipient id is
        the referenced click's recipient's. Raises RowsRefused (after recording the others)
        for conversions whose recipient is unknown or erased (and, without ``replace``, whose order
        the recipient already has: a keyless way in never changes a stored order)."""
        lookup = Batch(self.redis)
        asked = [lookup.get(ref.key) if ref is not None else None for ref in refs]
        replies = lookup.execute() if len(lookup) else []
        refusals: list[Refusal] = []
        buyers: list[tuple[int, ConversionIn, ClickRef | None, str]] = []
        for index, (conversion, ref, at) in enumerate(zip(conversions, refs, asked, strict=True)):
            referenced = parse_ref(replies[at]) if at is not None else None
            recipient_id = conversion.recipient_id or (
                referenced.recipient_id if referenced is not None else None
            )
            if recipient_id is None:
                refusals.append(_unknown_buyer(index, conversion, ref))
                continue
            buyers.append(
                (index, conversion, ref if referenced is not None else None, recipient_id)
            )
        if not replace:
            kept = self._stored_orders([(rid, c.order_id) for _, c, _, rid in buyers])
            refusals += [
                Refusal(index, "/order_id", ALREADY_RECORDED)
                for (index, *_), stored in zip(buyers, kept, strict=True)
                if stored
            ]
            buyers = [buyer for buyer, stored in zip(buyers, kept, strict=True) if not stored]
        transactions = [c.transaction(rid, now) for _, c, _, rid in buyers]
        positions = [index for index, *_ in buyers]
        order_refs = {(rid, c.order_id): ref for _, c, ref, rid in buyers if ref is not None}
        recorded, erased = self._record(transactions, order_refs)
        if erased is not None:
            refusals += [
                Refusal(positions[i], "/recipient_id", ERASED_DETAIL) for i in erased.refused
            ]
        if refusals:
            raise RowsRefused(sorted(refusals, key=lambda r: r.index), recorded.stored)
        return recorded

    def _stored_orders(self, orders: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each (recipient, order id) is stored already, in one round trip."""
        if not orders:
            return []
        batch = Batch(self.redis)
        asked = [batch.add("HEXISTS", keys.transactions(rid), order_id) for rid, order_id in orders]
        replies = batch.execute()
        return [bool(replies[at]) for at in asked]

    def _record(
        self, transactions: Sequence[Transaction], refs: Mapping[tuple[str, str], ClickRef]
    ) -> tuple[Recorded, ErasedRecipients | None]:
        refused: ErasedRecipients | None = None
        try:
            stored = self.customer_data.add_transactions(transactions)
        except ErasedRecipients as erased:
            refused, stored = erased, erased.stored
        skip = set(refused.refused) if refused is not None else set()
        orders = [t for n, t in enumerate(transactions) if n not in skip and t.type == "order"]
        credited = self._credit(orders, refs) if orders else []
        return Recorded(stored, credited), refused

    def _credit(
        self, orders: Sequence[Transaction], refs: Mapping[tuple[str, str], ClickRef]
    ) -> list[Credited]:
        read = Batch(self.redis)
        asked = []
        for order in orders:
            rid = order.recipient_id
            ref = refs.get((rid, order.order_id))
            asked.append(
                (
                    read.get(keys.last_click(rid)),
                    read.get(keys.last_view(rid)),
                    read.hget(keys.attributions(rid), order.order_id),
                    read.get(ref.key) if ref is not None else None,
                    read.hget(keys.profile(rid), PERSONA_ATTRIBUTE),
                )
            )
        replies = read.execute()
        exposures = self._exposures(orders)
        write = Batch(self.redis)
        rates = self.rates()
        credited = []
        for order, (click, view, kept, referenced, persona) in zip(orders, asked, strict=True):
            attribution = Attribution.from_stored(replies[kept])
            if attribution is None:
                attribution = self._attribute(order, replies, click, view, referenced)
                write.hset(
                    keys.attributions(order.recipient_id), order.order_id, attribution.stored()
                )
                write.expire(keys.attributions(order.recipient_id), self.ttl)
            rate = rates.get(order.currency)
            if rate is None:
                note = f"no exchange rate for {order.currency} into {self.currency}"
                credited.append(
                    Credited(order.order_id, order.recipient_id, attribution, None, note)
                )
                continue
            value = order.amount * rate
            for command in self._count(
                order,
                attribution,
                exposures.get(id(order), []),
                to_minor(value),
                _persona(replies[persona]),
            ):
                write.add(*command)
            credited.append(
                Credited(
                    order.order_id, order.recipient_id, attribution, value.quantize(Decimal("0.01"))
                )
            )
        self._execute(write)
        return credited

    def _attribute(
        self,
        order: Transaction,
        replies: Sequence[Any],
        click: int,
        view: int,
        referenced: int | None,
    ) -> Attribution:
        clicks = [Touch.from_stored(replies[click])]
        if referenced is not None:
            found = parse_ref(replies[referenced])
            if found is not None and found.recipient_id == order.recipient_id:
                clicks.append(found.touch)
        return attribute(
            order.at, clicks, Touch.from_stored(replies[view]), self.windows, self._send_time
        )

    def _send_time(self, campaign_id: str, send_id: str) -> dt.datetime | None:
        found = self.sends.get(campaign_id, send_id)
        return found.send_time if found is not None else None

    def _count(
        self,
        order: Transaction,
        attribution: Attribution,
        exposed: list[tuple[Send, str]],
        minor: int,
        persona: str | None,
    ) -> list[Command]:
        pseudonym = self.pseudonym(order.recipient_id)
        order_key = self.order_key(order.recipient_id, order.order_id)
        shard = shard_of(pseudonym)
        commands: list[Command] = []
        touch = attribution.touch
        if attribution.basis != "none" and touch is not None:
            scopes = [Scope(EXPERIMENT_SCOPE, self.ttl, self.ttl)]
            if touch.send is not None:
                scopes.append(Scope(send_scope(touch.send), self.ttl, self.ttl))
            if persona is not None and touch.block_id.startswith(SLOT_BLOCK_PREFIX):
                scopes.append(Scope(persona_scope(persona), self.ttl, self.ttl))
            commands += count_commands(
                touch.campaign_id,
                scopes,
                attribution.counted_as,
                touch.block_id,
                touch.variant,
                pseudonym,
                order_key,
                shard,
                minor,
            )
        for send, arm in exposed:
            commands += count_commands(
                send.campaign_id,
                [Scope(send_scope(send.id), self.ttl, self.ttl)],
                "exposed",
                SEND_BLOCK,
                arm,
                pseudonym,
                order_key,
                shard,
                minor,
            )
        return commands

    def _exposures(self, orders: Sequence[Transaction]) -> dict[int, list[tuple[Send, str]]]:
        """Per order (by ``id``), the newsletter sends of the click window before it whose
        members or holdout held its recipient."""
        earliest = min(o.at for o in orders) - self.windows.click
        latest = max(o.at for o in orders)
        campaign_ids = sorted(self.redis.smembers(keys.CAMPAIGN_INDEX))
        index = Batch(self.redis)
        for campaign_id in campaign_ids:
            index.zrangebyscore(
                keys.send_index(campaign_id), earliest.timestamp(), latest.timestamp()
            )
        wanted = [
            (campaign_id, send_id)
            for campaign_id, ids in zip(campaign_ids, index.execute(), strict=True)
            for send_id in ids
        ]
        sends = [known for known in self.sends.get_many(wanted) if known is not None]
        if not sends:
            return {}
        check = Batch(self.redis)
        asked = []
        for order in orders:
            for send in sends:
                if send.send_time <= order.at <= send.send_time + self.windows.click:
                    rid = order.recipient_id
                    asked.append(
                        (
                            order,
                            send,
                            _is_member(check, keys.send_members(send.campaign_id, send.id), rid),
                            _is_member(check, keys.send_holdout(send.campaign_id, send.id), rid),
                        )
                    )
        replies = check.execute() if asked else []
        found: dict[int, list[tuple[Send, str]]] = {}
        for order, send, member, held in asked:
            if replies[member]:
                found.setdefault(id(order), []).append((send, MEMBERS_ARM))
            elif replies[held]:
                found.setdefault(id(order), []).append((send, HOLDOUT_ARM))
        return found

    def _execute(self, batch: Batch) -> None:
        """Send the writes; where Redis has forgotten the counting script (restarted, failed
        over), load it and send them again (counting is idempotent)."""
        if not len(batch):
            return
        replies = batch.execute(raising=False)
        if any(isinstance(r, NoScriptError) for r in replies):
            load_script(self.redis)
            replies = batch.execute(raising=False)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply


def _is_member(batch: Batch, key: str, member: str) -> int:
    return batch.add("SISMEMBER", key, member)


def _unknown_buyer(index: int, conversion: ConversionIn, ref: ClickRef | None) -> Refusal:
    """Why a conversion without a recipient id could not be given one."""
    if conversion.click is None:
        return Refusal(
            index, "/recipient_id", "give the recipient id, or the click's attribution token"
        )
    if ref is None:
        return Refusal(index, "/click", "not a genuine attribution token")
    return Refusal(
        index, "/click", "the attribution token's click is unknown or older than the click window"
    )


def _persona(stored: str | None) -> str | None:
    """The persona a profile's stored attribute names (as the profile store encodes it, with
    its source tag), if any."""
    if not stored:
        return None
    value = decode_profile({PERSONA_ATTRIBUTE: stored}).get(PERSONA_ATTRIBUTE)
    return value if isinstance(value, str) and value else None
