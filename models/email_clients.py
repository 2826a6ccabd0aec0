"""Who fetched an image or followed a link, judged from request headers alone.

Opens: the email client or proxy, the device class, and whether a person was looking
(``human``), a proxy fetched at the reader's open (``proxied_human``), or nobody was
(``machine``). Clicks: whether a person or a link scanner followed the link.

Nothing about the request is stored or returned but the verdict (GDPR): no user agent, no IP
address. A remote address passed in for the Apple range check is only compared in memory.

Sources, by rule (vendor pages and public issue trackers; re-check when a decision depends on
one):

- Gmail: images go through Google's image proxy, fetched when the reader opens the message
  (Gmail Help, "Choose whether to show images"); user agent ``… (via ggpht.com
  GoogleImageProxy)`` (browscap/browscap#1108, #367; faisalman/ua-parser-js#494).
- Yahoo: ``YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html`` (the
  help page it names; ua-parser-js#494 shows a URL-encoded variant).
- Apple Mail Privacy Protection: prefetches at delivery with the bare user agent
  ``Mozilla/5.0`` since 2021-09-20 (ua-parser/uap-core#509). It egresses through iCloud Private
  Relay, whose ranges Apple publishes ("Prepare your network or web server for iCloud Private
  Relay", developer.apple.com; Word to the Wise, "Apple MPP reporting and geolocation",
  2021-09) — shared with everything else that uses Private Relay (Safari, for one), so an
  address in them only decides when the user agent names no client.
- Apple Mail: macOS ``Mozilla/5.0 (Macintosh; …) AppleWebKit/… (KHTML, like Gecko)`` with no
  browser token (uap-core#528); iOS the same with ``Mobile/…`` (biggora/express-useragent#78).
  Other apps' WebKit views can look identical (3rd-Eden/useragent#107; iPadOS desktop-class
  views look like macOS, beam-community/ua_parser#31), so these are best guesses.
- Outlook desktop: ``Microsoft Office/16.0 (… Microsoft Outlook 16.0.x; Pro)``, legacy
  ``… Microsoft Outlook 14.0.x; ms-office; MSOffice 14)``, Outlook for Mac ``MacOutlook/…``.
- Android mail apps render in a WebView: ``; wv)`` in the user agent, and (while Chrome phases
  it out) ``X-Requested-With: <package name>`` (Android Developers Blog, 2023-02-08, "Improving
  user privacy by requiring opt-in to send X-Requested-With header from WebView").
- Link scanners: Microsoft Defender Safe Links rewrites links to
  ``*.safelinks.protection.outlook.com`` and fetches them before and at the reader's click,
  with ordinary or blank Chrome user agents from Microsoft addresses (learn.microsoft.com,
  "Safe Links in Microsoft Defender for Office 365"; FusionAuth/fusionauth-issues#629;
  gophish/gophish#973, #2115, #2446, #2646); Proofpoint ``urldefense``, Mimecast
  ``protect-*.mimecast.com``, Barracuda ``linkprotect.cudasvc.com``, Cisco
  ``secure-web.cisco.com``. HEAD probes (civicrm/civicrm-core#35328), clicks within seconds of
  delivery, every link at once, and no ``text/html`` in ``Accept`` are the heuristics in use;
  ``Sec-Purpose``/``Purpose: prefetch`` marks a speculative fetch (Fetch Standard).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, overload
from urllib.parse import urlsplit

OpenKind = Literal["human", "proxied_human", "machine", "unknown"]
Device = Literal["mobile", "desktop", "tablet", "unknown"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ClickReason = Literal[
    "head",
    "method",
    "link scanner",
    "automation agent",
    "no user agent",
    "prefetch",
    "too fast after send",
    "no html accept",
    "every link at once",
    "no bot signal",
]

#: Every client name the classifiers return, for rule editors and reports.
CLIENT_NAMES: tuple[str, ...] = (
    "gmail_proxy",
    "yahoo_proxy",
    "apple_mpp",
    "outlook_desktop",
    "outlook_web",
    "apple_mail_ios",
    "apple_mail_mac",
    "ios_app",
    "macos_app",
    "thunderbird",
    "android_mail",
    "gmail_app",
    "samsung_mail",
    "outlook_android",
    "browser",
    "automation",
    "safe_links",
    "proofpoint",
    "mimecast",
    "barracuda",
    "cisco_secure_email",
    "amp",
    "web",
    "other",
    "unknown",
)
"""Every client class; ``amp`` (AMP for Email's proxied JSON fetch) and ``web`` (the website or
app asking the channel endpoint) are named by the route, not read from headers."""

# Gmail's proxy; older fetches carried only "(via ggpht.com)" (browscap#367).
_GMAIL_PROXY = re.compile(r"GoogleImageProxy|via ggpht\.com", re.IGNORECASE)
_YAHOO_PROXY = re.compile(r"YahooMailProxy", re.IGNORECASE)
# Apple MPP's prefetch agent is exactly this string (uap-core#509).
_APPLE_MPP_AGENT = "Mozilla/5.0"
_OUTLOOK_DESKTOP = re.compile(
    r"Microsoft Outlook|^Microsoft Office/|ms-office|MSOffice|^MacOutlook/", re.IGNORECASE
)
_THUNDERBIRD = re.compile(r"\bThunderbird/")
# Apple Mail: a WebKit agent that ends right after the engine (macOS) or "Mobile/<build>" (iOS).
_APPLE_MAIL_MAC = re.compile(
    r"^Mozilla/5\.0 \(Macintosh;[^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\)$"
)
_APPLE_MAIL_IOS = re.compile(
    r"^Mozilla/5\.0 \((?:iPhone|iPad|iPod)[^)]*\) AppleWebKit/[\d.]+ \(KHTML, like Gecko\)"
    r" Mobile/\w+$"
)
_IOS = re.compile(r"\((?:iPhone|iPad|iPod)")
_ANDROID_WEBVIEW = re.compile(r"Android[^)]*; wv\)|Android.*Version/[\d.]+ Chrome/")
_BROWSER = re.compile(r"Chrome/|CriOS/|Firefox/|FxiOS/|Safari/|Edg/|Edge/|MSIE |Trident/|OPR/")
# Android WebView puts the embedding app's package name in X-Requested-With (being phased out).
_ANDROID_APPS: Mapping[str, str] = {
    "com.google.android.gm": "gmail_app",
    "com.samsung.android.email.provider": "samsung_mail",
    "com.microsoft.office.outlook": "outlook_android",
}
# Outlook on the web, when the browser sends a Referer for the image.
_OUTLOOK_WEB_HOSTS = frozenset({"outlook.live.com", "outlook.office.com", "outlook.office365.com"})

_TABLET = re.compile(r"iPad|Android(?!.*Mobile)|Kindle|Silk/|\bTablet\b(?! PC)", re.IGNORECASE)
_MOBILE = re.compile(r"iPhone|iPod|Android.*Mobile|Windows Phone|Mobile/\w+|\bMobile;")
_DESKTOP = re.compile(r"Windows|Macintosh|X11|Linux|CrOS")

# Automated agents: headless browsers, crawlers, HTTP libraries. "CUBOT" is a phone brand.
_AUTOMATION = re.compile(
    r"Headless|PhantomJS|(?<!cu)bot\b|crawler|spider|python-requests|python-urllib|aiohttp"
    r"|httpx|\bcurl/|\bWget/|Go-http-client|libwww-perl|\bJava/|okhttp|axios/|node-fetch"
    r"|Scrapy",
    re.IGNORECASE,
)
# Link scanners by a marker in User-Agent, Referer or Via: (client name, pattern).
_SCANNERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("safe_links", re.compile(r"safelinks\.protection\.outlook\.com", re.IGNORECASE)),
    ("proofpoint", re.compile(r"urldefense|proofpoint", re.IGNORECASE)),
    ("mimecast", re.compile(r"mimecast", re.IGNORECASE)),
    ("barracuda", re.compile(r"cudasvc|barracuda", re.IGNORECASE)),
    ("cisco_secure_email", re.compile(r"secure-web\.cisco\.com", re.IGNORECASE)),
)
_SCANNER_HEADERS = ("User-Agent", "Referer", "Via")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/*"})


@dataclass(frozen=True)
class ClientInfo:
    """The outcome of classifying one image request."""

    client: str
    device: Device
    open_kind: OpenKind

    @property
    def machine(self) -> bool:
        """Whether no person was looking (a prefetch)."""
        return self.open_kind == "machine"


@dataclass(frozen=True)
class ClickInfo:
    """The outcome of classifying one click: ``bot``, the rule that decided, and the client."""

    bot: bool
    reason: ClickReason
    client: str


class AddressRanges(Sequence[IPNetwork]):
    """Networks with an O(log n) membership test for addresses, built once at startup.

    Apple's Private Relay egress list has hundreds of thousands of prefixes; a linear scan
    per request would not do. Overlapping and adjacent networks are merged.
    """

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        v4: list[ipaddress.IPv4Network] = []
        v6: list[ipaddress.IPv6Network] = []
        for network in networks:
            if isinstance(network, ipaddress.IPv4Network):
                v4.append(network)
            else:
                v6.append(network)
        merged: list[IPNetwork] = [
            *ipaddress.collapse_addresses(v4),
            *ipaddress.collapse_addresses(v6),
        ]
        self._networks = tuple(merged)
        self._spans = {
            version: (
                [int(n.network_address) for n in merged if n.version == version],
                [int(n.broadcast_address) for n in merged if n.version == version],
            )
            for version in (4, 6)
        }

    def contains_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` lies in one of the networks."""
        starts, ends = self._spans[address.version]
        value = int(address)
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= ends[index]

    @overload
    def __getitem__(self, index: int) -> IPNetwork: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[IPNetwork]: ...
    def __getitem__(self, index: int | slice) -> IPNetwork | Sequence[IPNetwork]:
        return self._networks[index]

    def __len__(self) -> int:
        return len(self._networks)

    def __iter__(self) -> Iterator[IPNetwork]:
        return iter(self._networks)

    def __repr__(self) -> str:
        return f"AddressRanges({len(self._networks)} networks)"


def parse_egress_ranges(lines: Iterable[str]) -> AddressRanges:
    """Apple's Private Relay ``egress-ip-ranges.csv`` (``prefix,country,region,city,…``) as ranges.

    Blank lines and ``#`` comments are skipped; a bad prefix raises ``ValueError`` naming its
    line, so a broken download fails at startup rather than silently matching nothing.
    """
    networks: list[IPNetwork] = []
    for number, line in enumerate(lines, start=1):
        prefix = line.split(",", 1)[0].strip()
        if not prefix or prefix.startswith("#"):
            continue
        try:
            networks.append(ipaddress.ip_network(prefix, strict=False))
        except ValueError as exc:
            raise ValueError(f"egress ranges line {number}: {exc}") from None
    return AddressRanges(networks)


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value, looked up case-insensitively; ``""`` when absent."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return (value or "").strip()


def _host(url: str) -> str | None:
    """The lower-cased host of ``url``; None when it has none or does not parse."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _in_ranges(remote_addr: str | None, networks: Sequence[IPNetwork]) -> bool:
    """Whether ``remote_addr`` parses and lies in ``networks``; it goes no further."""
    if not remote_addr or not networks:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(networks, AddressRanges):
        return networks.contains_address(address)
    return any(address in network for network in networks)


def _device(user_agent: str) -> Device:
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _DESKTOP.search(user_agent):
        return "desktop"
    return "unknown"


def _agent_client(user_agent: str, headers: Mapping[str, str]) -> ClientInfo | None:
    """The client a user agent names, or None when it names none we know."""
    named, ask = _named_by_agent(user_agent)
    if ask == _ASK_ANDROID_APP:
        assert named is not None
        app = _ANDROID_APPS.get(_header(headers, "X-Requested-With"), "android_mail")
        return ClientInfo(app, named.device, "human")
    if ask == _ASK_REFERER:
        assert named is not None
        if _host(_header(headers, "Referer")) in _OUTLOOK_WEB_HOSTS:
            return ClientInfo("outlook_web", named.device, "human")
    return named


_ASK_ANDROID_APP = "X-Requested-With"
_ASK_REFERER = "Referer"


@lru_cache(maxsize=4096)
def _named_by_agent(user_agent: str) -> tuple[ClientInfo | None, str | None]:
    """What the user agent alone names (cached: the same few agents come again and again),
    and which header, if any, decides the rest."""
    if _GMAIL_PROXY.search(user_agent):
        return ClientInfo("gmail_proxy", "unknown", "proxied_human"), None
    if _YAHOO_PROXY.search(user_agent):
        return ClientInfo("yahoo_proxy", "unknown", "proxied_human"), None
    if user_agent == _APPLE_MPP_AGENT:
        return ClientInfo("apple_mpp", "unknown", "machine"), None
    if _AUTOMATION.search(user_agent):
        return ClientInfo("automation", "unknown", "machine"), None
    if _OUTLOOK_DESKTOP.search(user_agent):
        return ClientInfo("outlook_desktop", "desktop", "human"), None
    device = _device(user_agent)
    if _THUNDERBIRD.search(user_agent):
        return ClientInfo(
            "thunderbird", "desktop" if device == "unknown" else device, "human"
        ), None
    if _APPLE_MAIL_IOS.match(user_agent):
        return ClientInfo("apple_mail_ios", device, "human"), None
    if _APPLE_MAIL_MAC.match(user_agent):
        return ClientInfo("apple_mail_mac", "desktop", "human"), None
    if "AppleWebKit/" in user_agent and not _BROWSER.search(user_agent):
        if _IOS.search(user_agent):
            return ClientInfo("ios_app", device, "human"), None
        if "Macintosh" in user_agent:
            return ClientInfo("macos_app", "desktop", "human"), None
    if _ANDROID_WEBVIEW.search(user_agent):
        return ClientInfo("android_mail", device, "human"), _ASK_ANDROID_APP
    if _BROWSER.search(user_agent):
        return ClientInfo("browser", device, "human"), _ASK_REFERER
    return None, None


def classify_open_request(
    method: str,
    headers: Mapping[str, str],
    remote_addr: str | None = None,
    mpp_networks: Sequence[IPNetwork] = (),
) -> ClientInfo:
    """Classify an image request by its headers (and, for Apple MPP only, its address).

    Order: Gmail and Yahoo proxies, Apple MPP's bare ``Mozilla/5.0``, automated agents,
    named clients; then an address in ``mpp_networks`` marks an otherwise unnamed agent as
    Apple MPP. A HEAD request shows nobody an image, so it is always a machine open. Pass an
    :class:`AddressRanges` for large lists. ``remote_addr`` is never stored or returned.
    """
    agent = _header(headers, "User-Agent")
    info = _agent_client(agent, headers) if agent else None
    if info is None:
        if _in_ranges(remote_addr, mpp_networks):
            info = ClientInfo("apple_mpp", "unknown", "machine")
        elif agent:
            info = ClientInfo("other", _device(agent), "unknown")
        else:
            info = ClientInfo("unknown", "unknown", "unknown")
    if method.upper() == "HEAD" and info.open_kind != "machine":
        info = ClientInfo(info.client, info.device, "machine")
    return info


def classify_open(user_agent: str | None) -> ClientInfo:
    """Classify a GET image request by its User-Agent alone."""
    headers = {"User-Agent": user_agent} if user_agent else {}
    return classify_open_request("GET", headers)


def _accepts_html(accept: str) -> bool:
    """Whether an ``Accept`` header asks for HTML with a non-zero quality."""
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.lower() not in _HTML_TYPES:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 1.0
        if quality > 0:
            return True
    return False


def _scanner(headers: Mapping[str, str]) -> str | None:
    """The link scanner a User-Agent, Referer or Via header names, if any."""
    values = [_header(headers, name) for name in _SCANNER_HEADERS]
    for name, pattern in _SCANNERS:
        if any(pattern.search(value) for value in values if value):
            return name
    return None


def classify_click(
    method: str,
    headers: Mapping[str, str],
    seconds_since_send: float | None = None,
    scanner_window_seconds: float = 10.0,
) -> ClickInfo:
    """Classify a click request as a person's or a bot's; the first rule that fires decides.

    Rules, in order: a non-GET method (``head``, ``method``); a scanner marker in User-Agent,
    Referer or Via (``link scanner``); an automated agent (``automation agent``); no User-Agent;
    a prefetch purpose header; a click less than ``scanner_window_seconds`` after the send,
    negative values included (``too fast after send``; 0 turns this off); an ``Accept`` that
    names no HTML type (``no html accept``; browsers navigating send ``text/html``, the recorded
    headless scanner ``*/*``; a missing header is no evidence either way). Otherwise a person
    (``no bot signal``). Scanners that wait, or that send browser headers from a Microsoft
    address, pass as people: feed :func:`is_click_burst` as well.
    """
    if scanner_window_seconds < 0:
        raise ValueError("scanner_window_seconds must not be negative")
    agent = _header(headers, "User-Agent")
    scanner = _scanner(headers)
    agent_info = _agent_client(agent, headers) if agent else None
    named = agent_info.client if agent_info and agent_info.client != "apple_mpp" else None
    client = scanner or named or ("other" if agent else "unknown")
    verb = method.upper()
    if verb == "HEAD":
        return ClickInfo(True, "head", client)
    if verb != "GET":
        return ClickInfo(True, "method", client)
    if scanner is not None:
        return ClickInfo(True, "link scanner", scanner)
    if agent and _AUTOMATION.search(agent):
        return ClickInfo(True, "automation agent", "automation")
    if not agent:
        return ClickInfo(True, "no user agent", client)
    purpose = f"{_header(headers, 'Sec-Purpose')} {_header(headers, 'Purpose')}".lower()
    if "prefetch" in purpose:
        return ClickInfo(True, "prefetch", client)
    if seconds_since_send is not None and seconds_since_send < scanner_window_seconds:
        return ClickInfo(True, "too fast after send", client)
    accept = _header(headers, "Accept")
    if accept and not _accepts_html(accept):
        return ClickInfo(True, "no html accept", client)
    return ClickInfo(False, "no bot signal", client)


def is_click_burst(
    click_times: Sequence[float], now: float, links_in_email: int, window: float = 1.0
) -> bool:
    """Whether this click completes "every link of the email clicked within ``window`` s".

    ``click_times`` are the earlier clicks of the same recipient on the same send (seconds,
    same clock as ``now``); this click at ``now`` counts too. Clicks within ``window`` either
    side of ``now`` count, which tolerates small clock differences between workers. An email
    with fewer than two links never bursts: one click on one link is what a person does.
    Only times are known, so a double-click on a two-link email also counts as a burst.
    """
    if window <= 0:
        raise ValueError("window must be positive")
    if links_in_email < 2:
        return False
    recent = sum(1 for t in click_times if abs(now - t) <= window)
    return recent + 1 >= links_in_email
