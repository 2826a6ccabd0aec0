"""Image files built in the test, in any format Pillow writes, plus deliberately bad ones."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageFilter


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), color: str = "#3366AA") -> bytes:
    """A small image of one colour in Pillow format ``fmt`` (PNG, JPEG, GIF, WEBP, BMP, TIFF…)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def noise_bytes(fmt: str, size: tuple[int, int] = (96, 96), seed: int = 7) -> bytes:
    """An image of random pixels (compresses badly, so truncating it cuts real image data)."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (50, 50)) -> bytes:
    """An animated GIF whose frames have different colours."""
    images = [Image.new("RGB", size, (60 * i % 256, 100, 200)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` grey pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def photo(size: tuple[int, int] = (800, 600), seed: int = 3) -> Image.Image:
    """A photograph-like picture: smooth colour fields under fine grain, so thousands of
    distinct colours that PNG compresses badly and JPEG well (as a real photo)."""
    rng = random.Random(seed)
    width, height = size
    coarse = (width // 40 + 2, height // 40 + 2)
    bands = [
        Image.frombytes("L", coarse, rng.randbytes(coarse[0] * coarse[1])).resize(
            size, Image.Resampling.BICUBIC
        )
        for _ in range(3)
    ]
    grain = Image.frombytes("L", size, rng.randbytes(width * height)).filter(
        ImageFilter.GaussianBlur(1.2)
    )
    return Image.blend(Image.merge("RGB", bands), Image.merge("RGB", [grain] * 3), 0.25)
