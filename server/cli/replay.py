"""``blanco replay CAMPAIGN [--held-out-days N]``: replay the newsletter's ranking offline on
the emails Blanco kept, against today's ranking (priority × affinity).

Prints a table on stderr and the figures as JSON on stdout. Only emails whose ranking was
explored (the newsletter's ``ranking.exploration_share``) are replayed; without any, it says so
and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from models.errors import NotFound
from models.newsletter.replay import replay
from models.newsletter.replay_log import export_log
from server.cli.context import command_services
from server.services import Services

TODAY = "today: priority × affinity"
RULES = "the newsletter's ranking rules"


def run_replay(
    services: Services,
    campaign_id: str,
    held_out_days: int,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Export the newsletter's log, replay both rankings on its last ``held_out_days`` days."""
    err = stderr or sys.stderr
    newsletter = services.newsletters.get(campaign_id)
    if newsletter is None:
        raise NotFound(f"campaign {campaign_id!r} has no newsletter")
    now = services.clock()
    settings = services.settings
    log = export_log(
        services.redis,
        campaign_id,
        pseudonym=services.signer.pseudonym,
        rates=settings.exchange_rates,
        max_ages=settings.max_score_ages,
        now=now,
    )
    days = sorted({email.day for email in log})
    held_out_from = days[-held_out_days] if len(days) >= held_out_days else None
    explored = [e for e in log if e.explored and held_out_from and e.day >= held_out_from]
    if held_out_from is None or not explored:
        print(
            f"blanco: {len(log):,} emails kept over {len(days)} day(s), none explored on the "
            f"last {held_out_days}: set the newsletter's ranking.exploration_share (e.g. 0.05) "
            "and replay once explored emails were opened",
            file=err,
        )
        return 1
    rules = newsletter.ranking
    today = rules.priority_times_affinity()
    items = list(services.feeds.load(newsletter.feed).items.values())
    found = replay(log, items, {TODAY: today, RULES: rules}, held_out_from, campaign_id)
    print(
        f"replayed {len(explored):,} explored emails of {held_out_from} to {days[-1]} "
        f"({len(log):,} emails kept):",
        file=err,
    )
    for name, figures in found.items():
        rate = figures.rate(figures.clicks)
        shown = f"{rate[0]:.2%} ({rate[1]:.2%}–{rate[2]:.2%})" if rate else "-"
        print(
            f"  {name}: {figures.matched:,} matched, click rate {shown}, {figures.orders:,} "
            f"orders, revenue {figures.revenue:,.2f}",
            file=err,
        )
    document = {
        "campaign_id": campaign_id,
        "held_out_from": held_out_from.isoformat(),
        "emails": len(log),
        "explored": len(explored),
        "at": now.isoformat(),
        "policies": {name: figures.as_dict() for name, figures in found.items()},
    }
    print(json.dumps(document), file=stdout or sys.stdout)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Handler of ``blanco replay``."""
    with command_services() as services:
        return run_replay(services, args.campaign, args.held_out_days)


def add_replay_command(subparsers: Any) -> None:
    """Register ``replay`` on the ``blanco`` command's subparsers."""
    parser = subparsers.add_parser(
        "replay",
        help="replay the newsletter's ranking offline on its kept emails, against today's",
    )
    parser.add_argument("campaign", help="the campaign whose newsletter to replay")
    parser.add_argument(
        "--held-out-days",
        type=int,
        default=2,
        help="how many of the last days to replay (the earlier ones teach popularity)",
    )
    parser.set_defaults(handler=cmd_replay)
