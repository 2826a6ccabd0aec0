"""Upload checks: allowed types by content, intact files, byte and pixel limits, bombs."""

from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image

from models.assets.image_validation import ImageFacts, ImageLimits, validate_image
from models.errors import InvalidInput
from tests.sample_images import animated_gif, image_bytes, noise_bytes, png_declaring

LIMITS = ImageLimits(max_bytes=1024 * 1024, max_pixels=1_000_000)


def refusal(data: bytes, limits: ImageLimits = LIMITS, field: str = "file") -> str:
    """The reason ``validate_image`` gives, checking that it points at ``field``."""
    with pytest.raises(InvalidInput) as caught:
        validate_image(data, limits, field)
    error = caught.value
    assert error.status_code == 422
    ((field_error),) = error.errors
    assert field_error.pointer == f"/{field}"
    assert field_error.message in error.public_message
    return field_error.message


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_allowed_types_are_recognised_by_content(fmt: str, media_type: str) -> None:
    facts = validate_image(image_bytes(fmt, (40, 30)), LIMITS)
    assert facts == ImageFacts(media_type=media_type, width=40, height=30, frames=1)


def test_animated_gif_counts_frames_and_their_pixels() -> None:
    data = animated_gif(frames=3, size=(50, 50))
    assert validate_image(data, LIMITS).frames == 3
    assert validate_image(data, ImageLimits(10_000, 3 * 2500)).frames == 3
    assert refusal(data, ImageLimits(10_000, 3 * 2500 - 1)) == (
        "has more than the 7499 pixels allowed (50×50 per frame)"
    )


def test_every_frame_is_decoded() -> None:
    """A GIF whose first frame is intact but whose last is cut off is refused."""
    frames = [Image.open(io.BytesIO(noise_bytes("PNG", seed=s))).convert("RGB") for s in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    whole = buffer.getvalue()
    assert validate_image(whole, LIMITS).frames == 2
    assert "damaged or truncated" in refusal(whole[: len(whole) * 9 // 10])


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM"])
def test_types_pillow_reads_but_we_refuse(fmt: str) -> None:
    reason = refusal(image_bytes(fmt, (16, 16)))
    assert "not an allowed type: PNG, JPEG, GIF or WebP" in reason


@pytest.mark.parametrize(
    "data", [b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"GIF8"]
)
def test_not_an_image(data: bytes) -> None:
    assert "not an image Blanco recognises" in refusal(data)


def test_empty() -> None:
    assert "empty" in refusal(b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_files_are_refused(fmt: str) -> None:
    whole = noise_bytes(fmt)
    validate_image(whole, LIMITS)
    for cut in (0.3, 0.66, 0.95):
        assert "damaged or truncated" in refusal(whole[: int(len(whole) * cut)])


def test_png_missing_its_end_is_refused_though_its_pixels_decode() -> None:
    whole = image_bytes("PNG")
    assert "damaged or truncated" in refusal(whole[:-20])
    corrupted = bytearray(whole)
    corrupted[-20] ^= 0xFF  # in the last bytes of the image data
    assert "damaged or truncated" in refusal(bytes(corrupted))


def test_over_the_byte_limit() -> None:
    data = image_bytes("PNG")
    validate_image(data, ImageLimits(len(data), 10_000))
    assert refusal(data, ImageLimits(len(data) - 1, 10_000)) == (
        f"is larger than the {len(data) - 1} bytes allowed"
    )


def test_over_the_configured_pixel_limit_before_decoding() -> None:
    assert "more than the 1199 pixels allowed (40×30 per frame)" in refusal(
        image_bytes("PNG", (40, 30)), ImageLimits(10_000, 40 * 30 - 1)
    )
    assert "more than" in refusal(png_declaring(50_000, 1_000))


def test_decompression_bomb_error() -> None:
    """Pillow's own refusal (over twice Image.MAX_IMAGE_PIXELS) is a 422, not a crash."""
    data = png_declaring(100_000, 100_000)
    assert len(data) < 200
    assert "decompression bomb" in refusal(data, ImageLimits(10_000, 10**12))


def test_decompression_bomb_warning_becomes_a_refusal() -> None:
    """Between MAX_IMAGE_PIXELS and twice that, Pillow only warns; that is refused too."""
    side = 10_000
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < side * side < 2 * Image.MAX_IMAGE_PIXELS
    assert "decompression bomb" in refusal(png_declaring(side, side), ImageLimits(10_000, 10**12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_image(image_bytes("PNG"), LIMITS)  # the filter did not leak
