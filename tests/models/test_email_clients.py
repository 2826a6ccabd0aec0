"""Open and click classification against recorded client requests, plus constructed cases."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from models.email_clients import (
    CLIENT_NAMES,
    AddressRanges,
    ClickInfo,
    ClientInfo,
    classify_click,
    classify_open,
    classify_open_request,
    is_click_burst,
    parse_egress_ranges,
)

# The copy keeps the suite self-contained; the shared file is the source it must match.
RECORDED = Path(__file__).parent / "data" / "client_requests.json"
SHARED = Path(__file__).parents[2].parent / "shared" / "clients" / "requests.json"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


RECORDS = _load(RECORDED)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)
SAMSUNG_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
APPLE_RANGES = [ipaddress.ip_network("172.224.224.0/27"), ipaddress.ip_network("2a02:26f7::/48")]


def human_click(**headers: str) -> dict[str, str]:
    return {"User-Agent": CHROME, "Accept": BROWSER_ACCEPT, **headers}


# recorded requests


def test_shared_requests_file_matches_the_copy() -> None:
    """Where shared/ sits beside the repo (CI, the team's machines) the copy must equal it; a
    newcomer's lone clone relies on the copy, which must still be the full record set."""
    if SHARED.is_file():
        assert _load(SHARED) == RECORDS, f"refresh {RECORDED.name} from {SHARED}"
    assert RECORDS["about"]
    assert len(RECORDS["opens"]) >= 6
    assert len(RECORDS["clicks"]) >= 3


@pytest.mark.parametrize("entry", RECORDS["opens"], ids=lambda e: e["name"])
def test_recorded_open_classifies_as_expected(entry: dict[str, Any]) -> None:
    info = classify_open_request(entry["method"], entry["headers"])
    expect = entry["expect"]
    assert info.client == expect["client"]
    assert info.open_kind == expect["open"]
    if "device" in expect:
        assert info.device == expect["device"]
    assert info.machine == (expect["open"] == "machine")


@pytest.mark.parametrize("entry", RECORDS["clicks"], ids=lambda e: e["name"])
def test_recorded_click_classifies_as_expected(entry: dict[str, Any]) -> None:
    info = classify_click(entry["method"], entry["headers"], seconds_since_send=3600)
    assert ("bot" if info.bot else "human") == entry["expect"]["click"], info.reason


def test_recorded_clicks_agree_with_the_accept_heuristic_alone() -> None:
    """The GET scanner sends ``*/*`` and the person ``text/html``: the rule fits the records."""
    gets = [e for e in RECORDS["clicks"] if e["method"] == "GET"]
    assert gets
    for entry in gets:
        accept_only = {"User-Agent": CHROME, "Accept": entry["headers"].get("Accept", "")}
        info = classify_click("GET", accept_only, seconds_since_send=3600)
        assert info.bot == (entry["expect"]["click"] == "bot"), entry["name"]


# opens


@pytest.mark.parametrize(
    "user_agent",
    [
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)",
        "Microsoft Office/15.0 (Windows NT 6.1; Microsoft Outlook 15.0.4569; Pro)",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; "
        ".NET4.0C; .NET4.0E; Microsoft Outlook 14.0.7113; ms-office; MSOffice 14)",
        "MacOutlook/16.16.18091001 (Intel Mac OS X Version 10.13.6 (Build 17G65))",
    ],
)
def test_outlook_desktop_variants(user_agent: str) -> None:
    assert classify_open(user_agent) == ClientInfo("outlook_desktop", "desktop", "human")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (  # Gmail app for Android with a Gmail account: the proxy fetches, not the phone
            {
                "User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                "(via ggpht.com GoogleImageProxy)"
            },
            ClientInfo("gmail_proxy", "unknown", "proxied_human"),
        ),
        (  # older Google proxy agent without the GoogleImageProxy token
            {
                "User-Agent": "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.0.7) "
                "Gecko/2009021910 Firefox/3.0.7 (via ggpht.com)"
            },
            ClientInfo("gmail_proxy", "unknown", "proxied_human"),
        ),
        (
            {"User-Agent": SAMSUNG_WEBVIEW, "X-Requested-With": "com.google.android.gm"},
            ClientInfo("gmail_app", "mobile", "human"),
        ),
        (
            {
                "User-Agent": SAMSUNG_WEBVIEW,
                "X-Requested-With": "com.samsung.android.email.provider",
            },
            ClientInfo("samsung_mail", "mobile", "human"),
        ),
        (
            {
                "User-Agent": SAMSUNG_WEBVIEW,
                "X-Requested-With": "com.microsoft.office.outlook",
            },
            ClientInfo("outlook_android", "mobile", "human"),
        ),
        (  # once WebView stops sending X-Requested-With, only "a mail app on Android" is left
            {"User-Agent": SAMSUNG_WEBVIEW},
            ClientInfo("android_mail", "mobile", "human"),
        ),
        (
            {"User-Agent": SAMSUNG_WEBVIEW.replace("Mobile Safari", "Safari")},
            ClientInfo("android_mail", "tablet", "human"),
        ),
        (
            {
                "User-Agent": "YahooMailProxy;%20https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
            },
            ClientInfo("yahoo_proxy", "unknown", "proxied_human"),
        ),
        (
            {
                "User-Agent": "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Mobile/15E148"
            },
            ClientInfo("apple_mail_ios", "tablet", "human"),
        ),
        (
            {
                "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
                "AppleWebKit/605.1.15 (KHTML, like Gecko)"
            },
            ClientInfo("apple_mail_mac", "desktop", "human"),
        ),
        (  # another app's WebKit view names itself after the build token
            {
                "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 13_4_1 like Mac OS X) "
                "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MailMaster/6.22.4.1582"
            },
            ClientInfo("ios_app", "mobile", "human"),
        ),
        (
            {
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 "
                "Thunderbird/115.3.1"
            },
            ClientInfo("thunderbird", "desktop", "human"),
        ),
        (
            {"User-Agent": CHROME, "Referer": "https://outlook.live.com/"},
            ClientInfo("outlook_web", "desktop", "human"),
        ),
        ({"User-Agent": CHROME}, ClientInfo("browser", "desktop", "human")),
        ({"User-Agent": IPHONE_SAFARI}, ClientInfo("browser", "mobile", "human")),
        (
            {"User-Agent": CHROME, "Referer": "http://[broken"},
            ClientInfo("browser", "desktop", "human"),
        ),
        (
            {"User-Agent": CHROME.replace("Chrome/", "HeadlessChrome/")},
            ClientInfo("automation", "unknown", "machine"),
        ),
        (
            {
                "User-Agent": "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
            },
            ClientInfo("browser", "mobile", "human"),
        ),
        ({"user-agent": "Mozilla/5.0"}, ClientInfo("apple_mpp", "unknown", "machine")),
        ({"User-Agent": "Werkzeug/3.1.3"}, ClientInfo("other", "unknown", "unknown")),
        ({}, ClientInfo("unknown", "unknown", "unknown")),
    ],
)
def test_open_classification(headers: dict[str, str], expected: ClientInfo) -> None:
    info = classify_open_request("GET", headers)
    assert info == expected
    assert info.client in CLIENT_NAMES


def test_classify_open_keeps_its_user_agent_api() -> None:
    assert classify_open(None) == ClientInfo("unknown", "unknown", "unknown")
    assert classify_open("  ") == ClientInfo("unknown", "unknown", "unknown")
    assert classify_open("Mozilla/5.0").machine
    assert classify_open(CHROME) == classify_open_request("GET", {"User-Agent": CHROME})


def test_head_image_request_is_a_machine_open() -> None:
    assert classify_open_request("HEAD", {"User-Agent": CHROME}) == ClientInfo(
        "browser", "desktop", "machine"
    )


# Apple MPP by address


@pytest.mark.parametrize(
    ("user_agent", "remote_addr", "expected"),
    [
        (None, "172.224.224.5", ClientInfo("apple_mpp", "unknown", "machine")),
        ("SomeFetcher/1.0", "172.224.224.5", ClientInfo("apple_mpp", "unknown", "machine")),
        ("SomeFetcher/1.0", "::ffff:172.224.224.5", ClientInfo("apple_mpp", "unknown", "machine")),
        ("SomeFetcher/1.0", "2a02:26f7::1", ClientInfo("apple_mpp", "unknown", "machine")),
        ("SomeFetcher/1.0", "172.224.225.5", ClientInfo("other", "unknown", "unknown")),
        ("SomeFetcher/1.0", "not an address", ClientInfo("other", "unknown", "unknown")),
        # Private Relay is shared with Safari: a named client stays a person
        (IPHONE_SAFARI, "172.224.224.5", ClientInfo("browser", "mobile", "human")),
    ],
)
def test_apple_ranges_decide_only_for_unnamed_agents(
    user_agent: str | None, remote_addr: str, expected: ClientInfo
) -> None:
    headers = {"User-Agent": user_agent} if user_agent else {}
    for ranges in (APPLE_RANGES, AddressRanges(APPLE_RANGES)):
        info = classify_open_request("GET", headers, remote_addr, ranges)
        assert info == expected
        assert remote_addr not in repr(info)


def test_egress_ranges_parse_merge_and_look_up() -> None:
    csv = [
        "# prefix,country,region,city,",
        "172.224.224.0/27,GB,GB-EN,London,",
        "172.224.224.32/27,GB,GB-EN,London,",
        "",
        "2a02:26f7:b3c0:4000::/64,US,US-NY,New York,",
    ]
    ranges = parse_egress_ranges(csv)
    assert list(ranges) == [
        ipaddress.ip_network("172.224.224.0/26"),
        ipaddress.ip_network("2a02:26f7:b3c0:4000::/64"),
    ]
    assert len(ranges) == 2
    assert ranges[0] == ipaddress.ip_network("172.224.224.0/26")
    assert list(ranges[1:]) == [ipaddress.ip_network("2a02:26f7:b3c0:4000::/64")]
    assert ranges.contains_address(ipaddress.ip_address("172.224.224.63"))
    assert not ranges.contains_address(ipaddress.ip_address("172.224.224.64"))
    assert not ranges.contains_address(ipaddress.ip_address("172.224.223.255"))
    assert ranges.contains_address(ipaddress.ip_address("2a02:26f7:b3c0:4000::9"))
    assert not AddressRanges([]).contains_address(ipaddress.ip_address("10.0.0.1"))


def test_egress_ranges_reject_a_bad_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_egress_ranges(["172.224.224.0/27,GB,,,", "garbage,GB,,,"])


# clicks


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("HEAD", human_click(), ClickInfo(True, "head", "browser")),
        ("POST", human_click(), ClickInfo(True, "method", "browser")),
        (  # time-of-click check through Safe Links: the Referer names it
            "GET",
            human_click(
                Referer="https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fx"
            ),
            ClickInfo(True, "link scanner", "safe_links"),
        ),
        (
            "GET",
            human_click(Via="1.1 eur03.safelinks.protection.outlook.com"),
            ClickInfo(True, "link scanner", "safe_links"),
        ),
        (
            "GET",
            human_click(Referer="https://urldefense.com/v3/__https://x__;!!abc$"),
            ClickInfo(True, "link scanner", "proofpoint"),
        ),
        (
            "GET",
            human_click(Referer="https://protect-eu.mimecast.com/s/abc"),
            ClickInfo(True, "link scanner", "mimecast"),
        ),
        (
            "GET",
            human_click(Referer="https://linkprotect.cudasvc.com/url?a=https%3a%2f%2fx"),
            ClickInfo(True, "link scanner", "barracuda"),
        ),
        (
            "GET",
            human_click(Referer="https://secure-web.cisco.com/1abc/https%3A%2F%2Fx"),
            ClickInfo(True, "link scanner", "cisco_secure_email"),
        ),
        (
            "GET",
            {"User-Agent": "curl/8.5.0", "Accept": "*/*"},
            ClickInfo(True, "automation agent", "automation"),
        ),
        (
            "GET",
            {"User-Agent": "python-requests/2.32.3", "Accept": "text/html"},
            ClickInfo(True, "automation agent", "automation"),
        ),
        (
            "GET",
            {"User-Agent": "Go-http-client/2.0", "Accept": "text/html"},
            ClickInfo(True, "automation agent", "automation"),
        ),
        (
            "GET",
            {"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)", "Accept": "text/html"},
            ClickInfo(True, "automation agent", "automation"),
        ),
        ("GET", {"Accept": BROWSER_ACCEPT}, ClickInfo(True, "no user agent", "unknown")),
        ("GET", human_click(**{"Sec-Purpose": "prefetch"}), ClickInfo(True, "prefetch", "browser")),
        (
            "GET",
            {"User-Agent": CHROME, "Accept": "*/*"},
            ClickInfo(True, "no html accept", "browser"),
        ),
        # a missing Accept is not evidence either way (the Werkzeug test client sends none)
        ("GET", {"User-Agent": CHROME}, ClickInfo(False, "no bot signal", "browser")),
        (
            "GET",
            {"User-Agent": CHROME, "Accept": "text/html;q=0, */*"},
            ClickInfo(True, "no html accept", "browser"),
        ),
        ("get", human_click(), ClickInfo(False, "no bot signal", "browser")),
        (
            "GET",
            {"user-agent": IPHONE_SAFARI, "accept": "text/html;q=0.9,*/*;q=0.8"},
            ClickInfo(False, "no bot signal", "browser"),
        ),
        (
            "GET",
            {"User-Agent": SAMSUNG_WEBVIEW, "Accept": BROWSER_ACCEPT},
            ClickInfo(False, "no bot signal", "android_mail"),
        ),
        (
            "GET",
            {"User-Agent": "Mozilla/5.0", "Accept": BROWSER_ACCEPT},
            ClickInfo(False, "no bot signal", "other"),
        ),
    ],
)
def test_click_classification(method: str, headers: dict[str, str], expected: ClickInfo) -> None:
    assert classify_click(method, headers, seconds_since_send=300) == expected


@pytest.mark.parametrize(
    ("seconds", "bot"),
    [(3, True), (9.9, True), (-1, True), (10, False), (300, False), (None, False)],
)
def test_click_soon_after_send_is_a_scanner(seconds: float | None, bot: bool) -> None:
    info = classify_click("GET", human_click(), seconds_since_send=seconds)
    assert info.bot is bot
    assert info.reason == ("too fast after send" if bot else "no bot signal")


def test_scanner_window_is_configurable() -> None:
    assert not classify_click("GET", human_click(), 3, scanner_window_seconds=0).bot
    assert classify_click("GET", human_click(), 20, scanner_window_seconds=30).bot
    with pytest.raises(ValueError, match="negative"):
        classify_click("GET", human_click(), 3, scanner_window_seconds=-1)


# bursts


@pytest.mark.parametrize(
    ("earlier", "now", "links", "burst"),
    [
        ([100.0, 100.2], 100.4, 3, True),  # every link within a second
        ([100.0, 100.2], 100.4, 4, False),  # one link still unclicked
        ([100.0], 100.9, 2, True),
        ([100.0], 101.0, 2, True),  # the window's edge counts
        ([100.0], 101.5, 2, False),
        ([40.0, 70.0], 100.0, 3, False),  # a person working through the links
        ([100.3], 100.0, 2, True),  # another worker's clock slightly ahead
        ([], 100.0, 1, False),  # a single-link email never bursts
        ([100.0, 100.1, 100.2], 100.3, 1, False),
    ],
)
def test_click_burst(earlier: list[float], now: float, links: int, burst: bool) -> None:
    assert is_click_burst(earlier, now, links) is burst


def test_click_burst_window_is_configurable() -> None:
    assert is_click_burst([100.0], 102.5, 2, window=3.0)
    with pytest.raises(ValueError, match="positive"):
        is_click_burst([100.0], 100.5, 2, window=0)
