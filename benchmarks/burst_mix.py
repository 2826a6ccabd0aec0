"""The field's client mix and the order of a send's image requests, for ``benchmarks.burst``.

Each recipient's email is fetched by one kind of client, picked by the shares below; the kind
says when, after delivery, its four images (the hero and three slots) are fetched, and whether
some readers fetch them again. Every request is put on one simulated clock and the whole send is
sorted by it, so recipients interleave as they do in a real burst: an Apple prefetch's four
images arrive close together, between other recipients' requests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.audience import first_names
from benchmarks.synthetic import OPENERS

NAME_COUNT = 1400
"""Distinct first names of the realistic audience (a national register's common names)."""
NAME_SKEW = 0.75
"""Zipf exponent of the first names' frequencies: the top name is about 3-4% of recipients,
the 1,400th about 0.01% (a first-name register's shape; s = 1 would make the top name 13%)."""


@dataclass(frozen=True)
class ClientKind:
    """One kind of email client as the image server sees it."""

    name: str
    share: float
    """Share of opened emails fetched by this client."""
    user_agent: str
    prefetch_within: float | None
    """A prefetch at delivery: the first fetch comes within this many seconds of it (uniform).
    None: a person's open, an exponential delay with a mean of half the send's window."""
    refetch_share: float
    """Share of these emails whose images are fetched a second time (a re-open)."""


def _agent(client: str) -> str:
    """The User-Agent of a client class of the synthetic base (the tests' known answers)."""
    return OPENERS[client].headers["User-Agent"]


# Shares: Litmus's Email Client Market Share (2024-2025) puts Apple Mail at about 50-60% of
# opens, nearly all of it prefetched by Mail Privacy Protection since iOS 15 (opt-in rates above
# 90% reported by ESPs), Gmail at about 25-30%, Outlook at 5-10%; the rest (iOS Mail without MPP,
# other apps) about 10%. Rounded to 50/30/10/10. Behaviour: MPP prefetches every image through
# Apple's proxy at delivery, whether or not the email is read (bare "Mozilla/5.0" agent);
# Google's image proxy fetches at the first open and serves later opens from its cache; Outlook
# desktop and iOS Mail without MPP fetch at each open (here: a second open for 20%). People open
# over the morning: squeezed here into about the burst's window, so that the replay mixes them. User
# agents: those of the synthetic base (benchmarks/synthetic.py), whose counting the tests check.
CLIENT_MIX: tuple[ClientKind, ...] = (
    ClientKind("apple_mpp", 0.50, _agent("apple_prefetch"), 120.0, refetch_share=0.0),
    ClientKind("gmail_proxy", 0.30, _agent("gmail_proxy"), None, refetch_share=0.0),
    ClientKind("outlook_desktop", 0.10, _agent("outlook_desktop"), None, refetch_share=0.2),
    ClientKind("apple_mail_ios", 0.10, _agent("ios_mail"), None, refetch_share=0.2),
)
IMAGE_SPREAD_SECONDS = 1.5
"""The images of one fetch arrive within this long of each other (parallel fetches)."""
REFETCH_DELAY = (600.0, 3600.0)
"""A re-open comes this many seconds (uniform) after the first."""


def skewed_names(count: int, rng: random.Random) -> list[str]:
    """``count`` first names drawn from ``NAME_COUNT`` distinct names with a Zipf-like skew."""
    names = first_names(NAME_COUNT)
    weights = [1 / (rank**NAME_SKEW) for rank in range(1, len(names) + 1)]
    return rng.choices(names, weights=weights, k=count)


def unique_names(count: int) -> list[str]:
    """``count`` distinct first names (every hero a render of its own)."""
    return first_names(count)


def pick_clients(count: int, rng: random.Random) -> list[ClientKind]:
    """A client kind per recipient, by the mix's shares."""
    return rng.choices(CLIENT_MIX, weights=[kind.share for kind in CLIENT_MIX], k=count)


@dataclass(frozen=True)
class Request:
    """One image request of the replay: when (simulated), what and by whom."""

    at: float
    path: str
    client: ClientKind


def schedule(
    urls: Sequence[Sequence[str]],
    clients: Sequence[ClientKind],
    window: float,
    rng: random.Random,
) -> list[Request]:
    """Every image request of the send in simulated-time order: recipient ``i``'s email
    (image paths ``urls[i]``) is delivered at a uniform moment of the ESP's ``window``
    seconds and fetched by ``clients[i]``."""
    requests: list[Request] = []
    for paths, client in zip(urls, clients, strict=True):
        delivered = rng.uniform(0.0, window)
        within = client.prefetch_within
        delay = rng.expovariate(2 / window) if within is None else rng.uniform(0, within)
        fetches = [delivered + delay]
        if rng.random() < client.refetch_share:
            fetches.append(fetches[0] + rng.uniform(*REFETCH_DELAY))
        for fetch in fetches:
            for path in paths:
                requests.append(Request(fetch + rng.uniform(0, IMAGE_SPREAD_SECONDS), path, client))
    requests.sort(key=lambda r: r.at)
    return requests
