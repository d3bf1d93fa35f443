"""Image galleries for the report: contact sheets (PIL, PNG) of test images, each captioned with its true
and, where it was misclassified, its predicted class, sized so the captions print at SMALL_PT or larger."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reportgen.report.figure_style import CAPTION_PX, CJK_FONT_FILES, PAGE_IN, SMALL_PT


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    for path in CJK_FONT_FILES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


@functools.lru_cache(maxsize=4096)
def _caption(text: str, color: str, size: int = CAPTION_PX) -> Image.Image:
    """A caption drawn once and pasted wherever it recurs: a sheet repeats a few class names hundreds of
    times, and drawing text is most of a sheet's cost."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((-left, -top), text, fill=color, font=font)
    return image


def _caption_lines(text: str, color: str, width: int) -> list[Image.Image]:
    """A caption as one line, or two where it is wider than the image above it ("Ankle boot" over "92.5%"):
    ten images to a row keep their captions at print size only if no caption is much wider than its image."""
    line = _caption(text, color)
    head, _space, tail = text.rpartition(" ")
    if line.width <= width or not head.strip("→ "):
        return [line]
    return [_caption(head, color), _caption(tail, color)]


def gallery_png(
    images: np.ndarray,
    captions: Sequence[tuple[str, str]],
    path: Path,
    columns: int = 10,
    scale: int = 3,
    wrong: bool = False,
    print_width_pt: float = PAGE_IN * 72,
    captioned: bool = True,
) -> None:
    """A contact sheet: each image upscaled, with 'true' and (if wrong) 'predicted' captions beneath; at most
    `columns` across, fewer where the sheet would otherwise be shrunk to fit `print_width_pt` (the width the
    printed report lays it out at) with its captions under SMALL_PT. `captioned=False`: images only, for a strip
    whose every caption would repeat the label beside it."""
    count = len(images)
    tile = images.shape[-1] * scale
    labels = [
        _caption_lines(truth, "#333333" if wrong else "#1a7f37", tile)
        + (_caption_lines(f"→ {predicted}", "#c62828", tile) if wrong else [])
        for truth, predicted in (captions if captioned else [])
    ] or [[] for _image in images]
    widest = max((label.width for lines in labels for label in lines), default=0)
    line_h = CAPTION_PX + 3
    cell_w, cell_h = max(tile, widest) + 8, tile + 6 + line_h * max(len(lines) for lines in labels)
    columns = max(1, min(columns, count, int(print_width_pt * CAPTION_PX / SMALL_PT) // cell_w))
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    # grey (N, 1, H, W) as (N, H, W); colour (N, 3, H, W) as PIL's (N, H, W, 3), shown in colour
    grey = images.shape[1] == 1
    pixels = np.asarray(images)[:, 0] if grey else np.ascontiguousarray(np.asarray(images).transpose(0, 2, 3, 1))
    for i in range(count):
        x0, y0 = (i % columns) * cell_w, (i // columns) * cell_h
        thumb = Image.fromarray(pixels[i], "L" if grey else "RGB").resize((tile, tile), Image.NEAREST)
        sheet.paste(thumb, (x0 + (cell_w - tile) // 2, y0 + 2))
        for n, label in enumerate(labels[i]):
            sheet.paste(label, (x0 + (cell_w - label.width) // 2, y0 + tile + 4 + n * line_h), label)
    writes = _BACKGROUND.get()
    if writes is None:
        _write_png(sheet, path)
    else:
        writes.append(writes.pool.submit(_write_png, sheet, path))


def _write_png(sheet: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", compress_level=1)  # higher levels cost seconds for a few % of size
    path.write_bytes(buffer.getvalue())


class _Writes(list):
    """The PNG writes handed to `pool`, in order."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        super().__init__()
        self.pool = pool


_BACKGROUND: ContextVar[_Writes | None] = ContextVar("contact_sheets_background", default=None)


@contextmanager
def pngs_written_meanwhile() -> Iterator[None]:
    """Inside, gallery_png hands each sheet's PNG encoding and writing to one background thread while this one
    draws on: zlib releases the GIL, and encoding is half of a sheet's cost (0.75 of the default report's 2.1 s
    of figures). On leaving, every sheet is on disk, or the first write that failed raises here; leaving on an
    error still waits for the writes, so nothing writes into a folder its caller then removes. Inside another
    such block the outer one's thread writes (and its end waits for) the sheets."""
    if _BACKGROUND.get() is not None:
        yield
        return
    with ThreadPoolExecutor(1, thread_name_prefix="png") as pool:
        writes = _Writes(pool)
        token = _BACKGROUND.set(writes)
        try:
            yield
        finally:
            _BACKGROUND.reset(token)
    for write in writes:
        write.result()
