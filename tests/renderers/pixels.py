"""Per-pixel colour differences, and finding exact colours in rendered images to assert where a
renderer drew what."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageColor


def channel_difference(image: Image.Image, other: Image.Image) -> Image.Image:
    """An L image: per pixel, the largest difference of any RGB channel of two same-sized
    images (0: the same colour, 255: black against white)."""
    difference = ImageChops.difference(image.convert("RGB"), other.convert("RGB"))
    strongest = difference.getchannel(0)
    for channel in (1, 2):
        strongest = ImageChops.lighter(strongest, difference.getchannel(channel))
    return strongest


def color_mask(image: Image.Image, color: str) -> Image.Image:
    """An L mask, 255 where ``image`` has exactly ``color`` (``#RRGGBB``)."""
    plain = Image.new("RGB", image.size, color)
    return channel_difference(image, plain).point(lambda v: 255 if v == 0 else 0)


def color_box(image: Image.Image, color: str) -> tuple[int, int, int, int] | None:
    """The bounding box (left, top, right, bottom) of the pixels of exactly ``color``."""
    return color_mask(image, color).getbbox()


def color_count(image: Image.Image, color: str) -> int:
    """How many pixels have exactly ``color``."""
    return color_mask(image, color).histogram()[255]


def longest_run(image: Image.Image, color: str) -> int:
    """The longest horizontal run of pixels of exactly ``color``."""
    target = ImageColor.getrgb(color)[:3]
    rgb = image.convert("RGB")
    longest = 0
    for y in range(rgb.height):
        run = 0
        for x in range(rgb.width):
            run = run + 1 if rgb.getpixel((x, y)) == target else 0
            longest = max(longest, run)
    return longest
