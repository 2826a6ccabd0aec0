"""The request headers of the clients the tests play: a person's browser, iOS Mail, Apple's
prefetch and a link scanner."""

from __future__ import annotations

BROWSER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
}
IOS_MAIL = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
}
APPLE_MPP = {"User-Agent": "Mozilla/5.0"}
SCANNER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "Accept": "*/*",
}
