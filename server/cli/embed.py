"""``blanco embed CAMPAIGN BLOCK --esp NAME [--token-field F] [--alt TEXT] [--format F]``.

Prints a block's copy-paste embed code in an ESP's merge-tag dialect on stdout: the HTML
(default), the MJML snippet, or, with ``--format json``, what ``GET …/blocks/{b}/embed``
answers. What the ESP needs (the field that must hold the token, how it URL-encodes) goes to
stderr, and so does every warning of the embed (an image written with ``alt=""``). Exits 1 for
an unknown campaign or block, 2 for invalid input (a field name the ESP cannot hold included).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from models.errors import BlancoError, InvalidInput, NotFound
from server.cli.context import command_services
from server.embed_codes import (
    DEFAULT_SEND_FIELD,
    DEFAULT_TOKEN_FIELD,
    DIALECTS,
    allowed_key_field,
    block_target,
    embed_code,
    newsletter_embed,
)
from server.services import Services

OUTPUTS = ("html", "mjml", "json")


def _problem_text(error: BlancoError) -> str:
    """The public message, with each invalid field when there are any."""
    if isinstance(error, InvalidInput) and error.errors:
        details = "; ".join(f"{e.field}: {e.message}" for e in error.errors)
        return f"{error.public_message} ({details})"
    return error.public_message


def _print_fields(esp: str, fields: dict[str, str], err: IO[str]) -> None:
    """Which ESP field feeds which URL parameter, and its merge tag (for people, on stderr)."""
    dialect = DIALECTS[esp]
    print(f"{dialect.title}:", file=err)
    for param, field in fields.items():
        tag = dialect.merge_tag(field)
        name = dialect.tag_name(field)
        print(f"  URL parameter {param}: the ESP field {name}, merge tag {tag}", file=err)


def _print_warnings(warnings: tuple[str, ...], err: IO[str]) -> None:
    """Each warning of the embed on its own line (stderr), the same as the API answers them."""
    for warning in warnings:
        print(f"warning: {warning}", file=err)


def run_embed(
    services: Services,
    campaign_id: str,
    block_id: str,
    esp: str,
    token_field: str = DEFAULT_TOKEN_FIELD,
    alt: str | None = None,
    output: str = "html",
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    key_field: str | None = None,
) -> int:
    """Print the embed code of one block; 0, or 1 (not found) or 2 (invalid input)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        campaign = services.campaigns.require_campaign(campaign_id)
        block = services.campaigns.require_block(campaign_id, block_id)
        target = block_target(block, token_field, alt, allowed_key_field(campaign, key_field))
        code = embed_code(target, esp, services.settings.public_url)
    except BlancoError as exc:
        print(f"blanco embed: {_problem_text(exc)}", file=err)
        return 1 if isinstance(exc, NotFound) else 2
    _print_fields(code.esp, code.fields, err)
    print(f"  URL-encoding: {code.url_encoding}", file=err)
    _print_warnings(code.warnings, err)
    if output == "json":
        print(json.dumps(code.as_dict()), file=out)
    else:
        print(code.mjml if output == "mjml" else code.html, file=out)
    return 0


def run_newsletter_embed(
    services: Services,
    campaign_id: str,
    esp: str,
    token_field: str = DEFAULT_TOKEN_FIELD,
    send_field: str = DEFAULT_SEND_FIELD,
    output: str = "html",
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    key_field: str | None = None,
) -> int:
    """Print the embed code of a whole newsletter; 0, or 1 (not found) or 2 (invalid input)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        campaign = services.campaigns.require_campaign(campaign_id)
        newsletter = services.newsletters.require(campaign_id)
        blocks = [services.campaigns.require_block(campaign_id, b) for b in newsletter.blocks]
        embed = newsletter_embed(
            newsletter,
            blocks,
            esp,
            services.settings.public_url,
            token_field,
            send_field,
            allowed_key_field(campaign, key_field),
        )
    except BlancoError as exc:
        print(f"blanco embed: {_problem_text(exc)}", file=err)
        return 1 if isinstance(exc, NotFound) else 2
    _print_fields(embed.esp, embed.fields, err)
    _print_warnings(embed.warnings, err)
    if output == "json":
        answer = {
            "esp": embed.esp,
            "html": embed.html,
            "mjml": embed.mjml,
            "warnings": list(embed.warnings),
        }
        print(json.dumps(answer), file=out)
    else:
        print(embed.mjml if output == "mjml" else embed.html, file=out)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Handler of ``blanco embed``."""
    with command_services() as services:
        if args.newsletter:
            return run_newsletter_embed(
                services,
                args.campaign,
                args.esp,
                args.token_field,
                args.send_field,
                args.format,
                key_field=args.key_field,
            )
        if args.block is None:
            print("blanco embed: name a BLOCK, or give --newsletter", file=sys.stderr)
            return 2
        return run_embed(
            services,
            args.campaign,
            args.block,
            args.esp,
            args.token_field,
            args.alt,
            args.format,
            key_field=args.key_field,
        )


def add_embed_command(subparsers: Any) -> None:
    """Register ``embed`` on the ``blanco`` command's subparsers."""
    parser = subparsers.add_parser(
        "embed", help="print a block's copy-paste embed code in an ESP's merge-tag dialect"
    )
    parser.add_argument("campaign", help="campaign id")
    parser.add_argument("block", nargs="?", help="block id (omit with --newsletter)")
    parser.add_argument(
        "--newsletter",
        action="store_true",
        help="the whole newsletter of the campaign: its blocks, then its slots",
    )
    parser.add_argument(
        "--send-field",
        default=DEFAULT_SEND_FIELD,
        help=f"with --newsletter: the ESP field holding the send id (default {DEFAULT_SEND_FIELD})",
    )
    parser.add_argument("--esp", required=True, choices=list(DIALECTS), help="the ESP's dialect")
    parser.add_argument(
        "--token-field",
        default=DEFAULT_TOKEN_FIELD,
        help=f"the ESP field holding each recipient's token (default {DEFAULT_TOKEN_FIELD})",
    )
    parser.add_argument("--alt", help="alt text (default: the fallback's alt, else the name)")
    parser.add_argument(
        "--key-field",
        help="instead of the token, the ESP's subscriber key field (campaigns with "
        "subscriber_keys only; their content is restricted)",
    )
    parser.add_argument(
        "--format", choices=OUTPUTS, default="html", help="html (default), mjml or json"
    )
    parser.set_defaults(handler=cmd_embed)
