"""Drawing what an open shows: a renderer's output, or the render cache's copy of it.

A render is a pure function of (content, fields, size, moment), cached by a hash of those
inputs: first in the worker's memory, then in Redis (shared by all workers). The Redis copy is
a nicety: when its node fails or is skipped, the image is drawn here and the open goes on. A
render that drew profile fields is *personal*: it stays in the worker's memory only (never in
Redis, where nobody else would reuse it), and every worker drops the personal renders it holds
when any recipient is erased.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from PIL import Image

from models.assets.render_cache import RenderCache
from models.campaigns.live_data import LiveFields
from models.campaigns.specs import FallbackContent
from models.storage import keys
from models.storage.batch import UNAVAILABLE, Batch
from models.storage.breakers import Breakers
from renderers.base import RenderedImage, RenderRequest
from renderers.registry import ContentParams, renderer_for
from renderers.templating import LIVE_FIELD
from server.metrics import Metrics
from server.open.answers import LAST_RESORT, ImageAnswer, ImageOptions
from server.services import Services

log = logging.getLogger(__name__)


class DecodedAssets:
    """Decoded uploaded images by id; ids are content hashes, so entries never go stale."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, asset_id: str) -> Image.Image | None:
        """The decoded image, if held."""
        with self._lock:
            return self._images.get(asset_id)

    def put(self, asset_id: str, data: bytes) -> Image.Image:
        """Decode ``data`` (validated at upload) and keep it."""
        image = Image.open(io.BytesIO(data))
        image.load()
        with self._lock:
            self._images[asset_id] = image
            while len(self._images) > self.size:
                self._images.popitem(last=False)
        return image


_ABSENT = object()


class RenderKeys:
    """The render-cache keys of recent render inputs, so that an open of content this worker
    has drawn already skips building the render request and hashing it.

    An entry is found by the params object (by id: the configuration cache holds one per block
    version, and the entry keeps a reference to it, so its id is not reused) and every other
    input of the key: size, moment, image options, and the type and value of each field the render
    uses. Inputs with a value that cannot be a dict key (live data) are not remembered; they
    are hashed on every open. At most ``size`` entries, forgotten all at once past that, and
    when any recipient is erased (the values are profile fields).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._keys: dict[tuple[Any, ...], tuple[object, str]] = {}

    @staticmethod
    def inputs(
        params: object,
        fields: tuple[str, ...] | None,
        profile: Mapping[str, Any],
        extra: Mapping[str, Any],
        rest: tuple[Any, ...],
    ) -> tuple[Any, ...] | None:
        """What the key of a render depends on besides its params (None: not rememberable)."""
        if fields is None:
            return None
        values = []
        for name in fields:
            value = extra[name] if name in extra else profile.get(name, _ABSENT)
            values.append((type(value), value))  # 1, 1.0 and True are equal, but draw apart
        found = (id(params), *rest, *values)
        try:
            hash(found)
        except TypeError:
            return None
        return found

    def get(self, inputs: tuple[Any, ...] | None) -> str | None:
        """The key worked out for ``inputs``, if held."""
        if inputs is None:
            return None
        held = self._keys.get(inputs)
        return held[1] if held is not None else None

    def __len__(self) -> int:
        return len(self._keys)

    def clear(self) -> None:
        """Forget every entry."""
        self._keys.clear()

    def put(self, params: object, inputs: tuple[Any, ...] | None, digest: str) -> None:
        """Remember the key of ``inputs`` (holding ``params``, whose id the inputs carry)."""
        if inputs is None:
            return
        if len(self._keys) >= self.size:
            self._keys.clear()
        self._keys[inputs] = (params, digest)


class Drawing:
    """Renders content for the open path, through the render cache."""

    def __init__(self, services: Services, metrics: Metrics, breakers: Breakers) -> None:
        self.services = services
        self.metrics = metrics
        self.breakers = breakers
        self.cache: RenderCache = services.render_cache
        self.decoded_assets = DecodedAssets()
        self.keys = RenderKeys()

    def render(
        self,
        width: int,
        height: int,
        params: ContentParams,
        profile: Mapping[str, Any],
        extra: Mapping[str, Any],
        now: dt.datetime,
        options: ImageOptions,
        *,
        personalised: bool,
        first_open: dt.datetime | None = None,
    ) -> ImageAnswer:
        """Render ``params`` at the block size over the ``profile`` and ``extra`` fields (live
        values, item fields), or take it from the render cache; raises renderer errors (which
        callers turn into fallbacks), never Redis failures. A render that draws the profile is
        personal: kept in this worker's memory only."""
        renderer = renderer_for(params.type)
        moment = renderer.moment(params, now)
        used = renderer.fields_of(params)
        known = self.keys.inputs(
            params,
            used,
            profile,
            extra,
            (width, height, moment, first_open, options.scale, options.accepts_webp),
        )
        digest = self.keys.get(known)
        if digest is not None:
            held = self.cache.local.get(digest)
            if held is not None:
                self.metrics.cache("hit_local")
                return ImageAnswer(held, f'"{digest[:32]}"', personalised)
        request = RenderRequest(
            width=width * options.scale,
            height=height * options.scale,
            fields={**profile, **extra},
            moment=moment,
            scale=options.scale,
            first_open=first_open,
            max_text_length=self.services.settings.max_text_length,
            accepts_webp=options.accepts_webp,
        )
        digest = renderer.cache_key(params, request)
        self.keys.put(params, known, digest)
        personal = bool(profile) and (used is None or not profile.keys().isdisjoint(used))
        image, where = self._cached(digest, personal)
        self.metrics.cache(where)  # type: ignore[arg-type]
        if image is None:
            wanted = renderer.assets_used(params)
            assets = self._assets(wanted) if wanted else {}
            request = replace(request, assets=assets)
            started = time.perf_counter()
            image = renderer.render_encoded(params, request)
            self.metrics.observe_render(params.type, time.perf_counter() - started)
            if len(assets) == len(wanted):  # not drawn with a placeholder for a missing image
                self._keep(digest, image, personal)
        return ImageAnswer(image, f'"{digest[:32]}"', personalised)

    def _cached(self, digest: str, personal: bool) -> tuple[RenderedImage | None, str]:
        local = self.cache.local.get(digest)
        if local is not None:
            return local, "hit_local"
        if personal:
            return None, "miss"
        try:
            return self.cache.lookup_shared(digest, self.breakers)
        except UNAVAILABLE:
            return None, "miss"

    def _keep(self, digest: str, image: RenderedImage, personal: bool) -> None:
        """Keep the render in memory and, unless personal, in Redis."""
        self.cache.local.put(digest, image, personal=personal)
        if personal:
            return
        with contextlib.suppress(*UNAVAILABLE):  # drawn again next time
            self.cache.put_shared(digest, image, self.breakers)

    def _assets(self, wanted: frozenset[str]) -> dict[str, Image.Image]:
        """Decoded uploaded images by id (a missing one is simply absent)."""
        found = {i: img for i in wanted if (img := self.decoded_assets.get(i)) is not None}
        missing = wanted - found.keys()
        if missing:
            ids = sorted(missing)
            batch = Batch(self.services.redis_bytes, guard=self.breakers)
            for asset_id in ids:
                batch.get(keys.asset(asset_id))
            try:
                loaded = batch.execute()
            except UNAVAILABLE:
                return found  # drawn with placeholders, and not cached
            for asset_id, data in zip(ids, loaded, strict=True):
                if data is not None:
                    found[asset_id] = self.decoded_assets.put(asset_id, bytes(data))
        return found

    def fallback(
        self,
        width: int,
        height: int,
        fallback: FallbackContent,
        label: str,
        now: dt.datetime,
        reason: str,
        options: ImageOptions,
    ) -> ImageAnswer:
        """The fallback content as an image, or the last resort if even that fails; counted
        with ``reason``. ``label`` names the block or slot in logs. Never raises."""
        try:
            answer = self.render(
                width,
                height,
                fallback.content,
                {},
                {LIVE_FIELD: LiveFields()},  # nothing personal, no live values: reads render empty
                now,
                options,
                personalised=False,
            )
        except Exception:
            log.exception("fallback render failed for %s", label)
            self.metrics.fallback("last resort")
            return LAST_RESORT
        self.metrics.fallback(reason)
        return ImageAnswer(answer.image, answer.etag, False, reason)
