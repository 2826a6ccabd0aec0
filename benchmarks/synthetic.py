"""A seeded synthetic newsletter base with known answers, shared by the tests and the benchmarks.

Four parts, each a pure function of its seed:

* ``visits``: who opens and clicks an email with a three-arm experiment, from which client, in
  what order: Apple Mail readers whose images Apple prefetches at delivery, Gmail readers behind
  Google's image proxy, Outlook desktop, iOS Mail, images-off readers who click without an open,
  link scanners that click before the person, ``HEAD`` probes, and re-opens;
* ``expected_figures``: what a report must say about them, computed here from the visits and
  the arm each was shown, without any of Blanco's code: the counts, and the distinct recipients
  per arm (reached, seen opening, clicked, clicked and seen opening);
* ``orders`` and ``expected_segments``: a customer base with orders in five currencies (one
  without an exchange rate), refunds, orders on the day boundaries of the lifecycle rules and
  orders not yet placed, and the RFM scores, segment and lifecycle stage each recipient must get;
* ``subscribers`` and ``expected_verdicts``: a newsletter base with scores either side of the
  audience rule's threshold, fresh or stale (some only by a later send's time), consent given,
  refused or missing, and suppressions, and each recipient's outcome in a send.

What each client sends and how Blanco must count it is the field's behaviour, stated here
independently of Blanco's classifier (``docs/measurement.md`` names the same rules).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class Client:
    """A client class: the request it sends, and how it must be counted."""

    name: str
    headers: Mapping[str, str]
    method: str
    kind: str
    """An open's kind (``human``, ``proxied_human``, ``machine``) or a click's (``human``,
    ``bot``)."""


IOS_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
BROWSER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
HTML = "text/html,application/xhtml+xml,*/*;q=0.8"
SAFE_LINKS = "https://eur01.safelinks.protection.outlook.com/"
OPENERS = {
    "apple_prefetch": Client("apple_prefetch", {"User-Agent": "Mozilla/5.0"}, "GET", "machine"),
    "ios_mail": Client("ios_mail", {"User-Agent": IOS_AGENT}, "GET", "human"),
    "gmail_proxy": Client(
        "gmail_proxy",
        {
            "User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
            "(via ggpht.com GoogleImageProxy)"
        },
        "GET",
        "proxied_human",
    ),
    "outlook_desktop": Client(
        "outlook_desktop",
        {"User-Agent": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328)"},
        "GET",
        "human",
    ),
    "head_probe": Client("head_probe", {"User-Agent": BROWSER_AGENT}, "HEAD", "machine"),
}
CLICKERS = {
    "browser": Client("browser", {"User-Agent": BROWSER_AGENT, "Accept": HTML}, "GET", "human"),
    "safe_links": Client(
        "safe_links",
        {"User-Agent": BROWSER_AGENT, "Accept": HTML, "Referer": SAFE_LINKS},
        "GET",
        "bot",
    ),
    "head_click": Client(
        "head_click", {"User-Agent": BROWSER_AGENT, "Accept": HTML}, "HEAD", "bot"
    ),
}


@dataclass(frozen=True)
class Visit:
    """One request of the script: a recipient opens the image or clicks the link."""

    recipient: str
    event: str  # "open" or "click"
    client: Client


READERS = (
    # (share, what the reader's email client does); opens then clicks, in this order
    (0.35, "apple"),  # Apple's prefetch at delivery, then maybe the person on iOS Mail
    (0.30, "gmail"),  # Google's proxy fetches when the person opens
    (0.15, "outlook"),  # Outlook desktop, its links scanned by Safe Links before the person
    (0.10, "images_off"),  # never loads images; may still click
    (0.10, "probe"),  # a HEAD probe (a security gateway), then iOS Mail
)


def recipients(count: int) -> list[str]:
    """The recipient ids of a base of ``count``."""
    return [f"syn-{n:06d}" for n in range(count)]


def visits(people: Sequence[str], seed: int) -> list[Visit]:
    """The script of requests for ``people``, a pure function of ``seed``. About 30% click;
    a fifth re-open."""
    rng = random.Random(seed)
    script: list[Visit] = []
    shares = [share for share, _ in READERS]
    for person in people:
        (reader,) = rng.choices([name for _, name in READERS], weights=shares)
        clicks = rng.random() < 0.3
        opens: list[Client] = []
        if reader == "apple":
            opens.append(OPENERS["apple_prefetch"])
            if rng.random() < 0.6:
                opens.append(OPENERS["ios_mail"])
        elif reader == "gmail":
            opens.append(OPENERS["gmail_proxy"])
        elif reader == "outlook":
            opens.append(OPENERS["outlook_desktop"])
        elif reader == "probe":
            opens += [OPENERS["head_probe"], OPENERS["ios_mail"]]
        if opens and rng.random() < 0.2:
            opens.append(opens[-1])  # a re-open
        script += [Visit(person, "open", client) for client in opens]
        if reader == "outlook" and clicks:
            script.append(Visit(person, "click", CLICKERS["safe_links"]))
        if clicks:
            script.append(Visit(person, "click", CLICKERS["browser"]))
            if rng.random() < 0.1:
                script.append(Visit(person, "click", CLICKERS["head_click"]))
    return script


@dataclass
class ArmFigures:
    """What a report must say about one arm."""

    opens: int = 0
    human_opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    bot_clicks: int = 0
    reached: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)

    def exact(self) -> dict[str, int]:
        """The distinct recipients, as the report's exact figures name them."""
        return {
            "recipients": len(self.reached),
            "openers": len(self.opened),
            "clickers": len(self.clicked),
            "clickers_seen_opening": len(self.clicked & self.opened),
        }


def expected_figures(shown: Iterable[tuple[Visit, str]]) -> dict[str, ArmFigures]:
    """Per arm, the figures of the visits, each with the arm it was shown (or followed)."""
    arms: dict[str, ArmFigures] = defaultdict(ArmFigures)
    for visit, arm in shown:
        figures = arms[arm]
        kind = visit.client.kind
        if visit.event == "open":
            figures.opens += 1
            figures.reached.add(visit.recipient)
            if kind == "machine":
                figures.machine_opens += 1
            else:
                figures.human_opens += 1
                figures.opened.add(visit.recipient)
        elif kind == "bot":
            figures.bot_clicks += 1
        else:
            figures.clicks += 1
            figures.reached.add(visit.recipient)
            figures.clicked.add(visit.recipient)
    return dict(arms)


# the customer base


RATES = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")}
"""Exchange rates into EUR of the base's currencies; ``CHF`` has none (left out of monetary)."""
CURRENCIES = ("EUR", "EUR", "USD", "GBP", "CHF")
LIFECYCLE_DAYS = (30, 90, 180)
"""new, active, lapsed: the defaults of ``BLANCO_LIFECYCLE_*_DAYS``."""


@dataclass(frozen=True)
class Order:
    """One transaction of the base: an order or a refund of one."""

    recipient: str
    order_id: str
    at: dt.datetime
    amount: Decimal
    currency: str
    refund: bool = False

    def document(self) -> dict[str, Any]:
        """The transaction as the ingest API takes it."""
        return {
            "recipient_id": self.recipient,
            "order_id": self.order_id,
            "at": self.at.isoformat(),
            "amount": str(self.amount),
            "currency": self.currency,
            **({"type": "refund"} if self.refund else {}),
        }


def orders(people: Sequence[str], now: dt.datetime, seed: int) -> list[Order]:
    """Orders of ``people`` over two years before ``now``, a pure function of ``seed``: a
    tenth are prospects, the rest order one to eight times in five currencies; some orders are
    refunded (partly or wholly) and some fall on the day boundaries of the rules; a few orders
    come after ``now`` (not yet placed at the moment of the run)."""
    rng = random.Random(seed)
    made: list[Order] = []
    for person in people:
        if rng.random() < 0.1:
            continue
        for n in range(rng.choice((1, 1, 2, 2, 3, 4, 5, 8))):
            days = rng.choice(
                (
                    rng.uniform(0, 730),
                    rng.uniform(0, 60),
                    float(rng.choice(LIFECYCLE_DAYS)),  # exactly on a rule's boundary
                    rng.choice(LIFECYCLE_DAYS) + rng.choice((-1e-4, 1e-4)),  # just either side
                )
            )
            amount = Decimal(rng.randrange(500, 50_000)) / 100
            order = Order(
                person,
                f"{person}-{n}",
                now - dt.timedelta(days=days),
                amount,
                rng.choice(CURRENCIES),
            )
            made.append(order)
            if rng.random() < 0.1:
                part = amount if rng.random() < 0.5 else (amount / 4).quantize(Decimal("0.01"))
                made.append(
                    replace(order, order_id=f"{order.order_id}-r", amount=part, refund=True)
                )
        if rng.random() < 0.05:
            made.append(
                Order(person, f"{person}-later", now + dt.timedelta(hours=2), Decimal(10), "EUR")
            )
    return made


@dataclass(frozen=True)
class Segmented:
    """What segmentation must say about one customer."""

    recency: int
    frequency: int
    monetary: int
    segment: str
    lifecycle: str


def expected_segments(
    made: Sequence[Order], people: Sequence[str], now: dt.datetime
) -> dict[str, Segmented | str]:
    """RFM scores, segment and lifecycle per customer, and the lifecycle of each prospect,
    worked out from the rules of ``docs/recipient-data.md`` with average ranks (scipy's
    ``rankdata``) and exact fractions, not Blanco's code."""
    from scipy.stats import rankdata

    placed: dict[str, list[Order]] = defaultdict(list)
    money: dict[str, Decimal] = defaultdict(Decimal)
    for order in made:
        if order.at > now:
            continue
        if not order.refund:
            placed[order.recipient].append(order)
        if order.currency in RATES:
            sign = -1 if order.refund else 1
            money[order.recipient] += sign * order.amount * RATES[order.currency]
    customers = sorted(placed)
    recency = [
        float((now - max(o.at for o in placed[c])) // dt.timedelta(days=1)) for c in customers
    ]
    frequency = [float(len(placed[c])) for c in customers]
    monetary = [float(money[c]) for c in customers]
    count = len(customers)

    def scores(values: list[float], higher_is_better: bool) -> list[int]:
        ranks = rankdata(values if higher_is_better else [-v for v in values], method="average")
        return [
            min(5, 1 + math.floor(5 * (Fraction(str(r)) - Fraction(1, 2)) / count)) for r in ranks
        ]

    answers: dict[str, Segmented | str] = {}
    new_days, active_days, lapsed_days = LIFECYCLE_DAYS
    for customer, r, f, m in zip(
        customers,
        scores(recency, False),
        scores(frequency, True),
        scores(monetary, True),
        strict=True,
    ):
        mine = placed[customer]
        first = now - min(o.at for o in mine)
        last = now - max(o.at for o in mine)
        if first <= dt.timedelta(days=new_days):
            stage = "new_customer"
        elif last <= dt.timedelta(days=active_days):
            stage = "active"
        elif last <= dt.timedelta(days=lapsed_days):
            stage = "lapsing"
        else:
            stage = "lapsed"
        answers[customer] = Segmented(r, f, m, _segment(r, f + m, len(mine)), stage)
    for person in people:
        answers.setdefault(person, "prospect")
    return answers


def _segment(r: int, fm: int, orders: int) -> str:
    rules = (
        (r >= 4 and orders == 1, "new"),
        (r >= 4 and fm >= 8, "champions"),
        (r >= 3 and fm >= 6, "loyal"),
        (r >= 3, "potential_loyalist"),
        (fm >= 6, "at_risk"),
        (r == 2, "hibernating"),
    )
    return next((name for matched, name in rules if matched), "lost")


# the daily audience


THRESHOLD = 0.7
"""The audience rule of the base's newsletter: ``travel_propensity`` at least this."""
MAX_AGE = dt.timedelta(hours=168)
"""``BLANCO_SCORE_MAX_AGE_HOURS``'s default: an older score counts as missing."""


@dataclass(frozen=True)
class Subscriber:
    """A recipient of the newsletter base: what the export judges."""

    recipient: str
    consent: bool | None
    """``consent_email``: None when the attribute is missing (not a yes)."""
    score: float | None
    computed_at: dt.datetime
    suppressed: bool
    first_name: str = "Sam"
    erased: bool = False
    """Erased after loading (``DELETE /recipients/{r}``): in no send, never suppressed."""

    def profile(self) -> dict[str, Any]:
        """The profile upsert."""
        attributes: dict[str, Any] = {
            "email": f"{self.recipient}@example.com",
            "first_name": self.first_name,
        }
        if self.consent is not None:
            attributes["consent_email"] = self.consent
        return {"recipient_id": self.recipient, "attributes": attributes}

    def scores(self) -> dict[str, Any] | None:
        """The scores upsert, if the recipient has a score."""
        if self.score is None:
            return None
        return {
            "recipient_id": self.recipient,
            "computed_at": self.computed_at.isoformat(),
            "scores": {"travel_propensity": self.score},
        }


def subscribers(people: Sequence[str], now: dt.datetime, seed: int) -> list[Subscriber]:
    """The newsletter base, a pure function of ``seed``: scores either side of the threshold
    (and on it), fresh, stale, or stale only by a later send's time; consent given, refused or
    missing; some suppressed, some unscored, some erased; a fifth with a first name a
    spreadsheet would run or split."""
    rng = random.Random(seed)
    made = []
    for person in people:
        score = rng.choice((None, THRESHOLD, rng.uniform(0, 1), rng.uniform(THRESHOLD, 1)))
        age = rng.choice(
            (
                dt.timedelta(hours=rng.uniform(0, 100)),  # fresh
                MAX_AGE + dt.timedelta(hours=rng.uniform(1, 500)),  # stale
                MAX_AGE - dt.timedelta(hours=rng.uniform(1, 20)),  # stale by tomorrow's send
            )
        )
        consent = rng.choices((True, False, None), weights=(8, 1, 1))[0]
        name = rng.choice(HOSTILE_NAMES) if rng.random() < 0.2 else "Sam"
        suppressed = rng.random() < 0.05
        erased = rng.random() < 0.03
        made.append(Subscriber(person, consent, score, now - age, suppressed, name, erased))
    return made


HOSTILE_NAMES = (
    '=HYPERLINK("https://evil.example","Anna")',
    "+31 6 1234 5678",
    "-17% Bram",
    "@chloe",
    "\t=1+1",
    "Dirk\nJansen",
    "Eva\r\nde Vries",
    "Zoë",
)
"""First names a spreadsheet would run as formulas or split into rows, and a harmless one."""


def spreadsheet_cell(text: str) -> str:
    """What an audience CSV must hold for ``text`` (``docs/newsletter.md``): a leading
    apostrophe before ``=``, ``+``, ``-``, ``@``, a tab or a carriage return at the start, and
    every line break a space."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return " ".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def expected_verdicts(base: Sequence[Subscriber], judged_at: dt.datetime) -> dict[str, str]:
    """Each subscriber's outcome in a send judged at ``judged_at`` (the later of the export's
    moment and the send time; erased ones have none), first match: ``suppressed``,
    ``no_consent`` (consent not ``true``), ``not_selected`` (no score fresh at that moment at
    or above the threshold), else ``in`` (the audience or the holdout, which a hash divides)."""
    verdicts = {}
    for subscriber in base:
        if subscriber.erased:
            continue
        fresh = judged_at - subscriber.computed_at <= MAX_AGE
        if subscriber.suppressed:
            verdicts[subscriber.recipient] = "suppressed"
        elif subscriber.consent is not True:
            verdicts[subscriber.recipient] = "no_consent"
        elif subscriber.score is None or not fresh or subscriber.score < THRESHOLD:
            verdicts[subscriber.recipient] = "not_selected"
        else:
            verdicts[subscriber.recipient] = "in"
    return verdicts
