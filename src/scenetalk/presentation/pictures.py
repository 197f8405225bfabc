"""Pictures of grounding (Karpathy & Fei-Fei §3.1.4 and §4): words on the regions they
describe (Figure 5, before and after MRF smoothing), generated region descriptions
(Figure 7), the best regions of a collection for text snippets (Figures 9-10) and a photo's
detections.

The drawing functions are pure: a PIL image, normalised boxes ``(x0, y0, x1, y1)`` in [0, 1]
(``scenetalk.vision.boxes``), labels and scores in; a new PIL image out. ``save_png`` writes
one atomically. ``scenetalk align``, ``regions``, ``sheet`` and ``demo`` use them, and the
report; ``word_alignment_picture`` and ``region_descriptions_picture`` draw the façade's results.

Photos are drawn at ``DISPLAY_SIZE`` px on their longer side: Flickr8K's photos here are
224x224, where a readable label would cover a third of the picture, so they are upscaled
(2x) first and boxes and labels are drawn on the larger copy.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from scenetalk.grounding.region_descriptions import RegionDescriptions
from scenetalk.grounding.word_regions import LOW_SCORE, Link, WordAlignment, links
from scenetalk.vision.boxes import to_pixels

#: Longer side of a photo as drawn (224 px photos are doubled).
DISPLAY_SIZE = 448

#: Region colours: distinct hues of Sasha Trubetskoy's 20-colour list, dark enough for white
#: text except where ``ink_on`` picks black; regions get them in order of first use.
PALETTE = ((230, 25, 75), (60, 180, 75), (67, 99, 216), (245, 130, 49), (145, 30, 180), (70, 153, 144),
           (240, 50, 230), (154, 99, 36), (0, 0, 117), (128, 128, 0), (128, 0, 0), (66, 212, 244),
           (255, 225, 25), (0, 130, 200))
WHITE, INK, GREY, PALE = (255, 255, 255), (25, 25, 25), (140, 140, 140), (232, 232, 232)
MARGIN = 12


# -- text -----------------------------------------------------------------------------------

@functools.cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans, which ships inside the package (``presentation/fonts``, copied from
    matplotlib with its licence), so pictures look the same on every machine; Pillow's built-in
    font if it is somehow missing."""
    path = os.path.join(os.path.dirname(__file__), "fonts", f"DejaVuSans{'-Bold' if bold else ''}.ttf")
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


def text_width(text: str, fnt) -> int:
    return int(np.ceil(fnt.getlength(text)))


def line_height(fnt) -> int:
    """One line's height from the font's metrics, not the text's ink, so lines of any
    letters stack evenly."""
    ascent, descent = fnt.getmetrics()
    return ascent + descent


def wrap(text: str, fnt, width: int) -> list[str]:
    """``text`` broken between words into lines at most ``width`` px wide (a single longer
    word is cut with an ellipsis rather than run off the picture)."""
    lines: list[str] = []
    for word in text.split():
        while text_width(word, fnt) > width and len(word) > 1:
            word = word[:-2] + "…"
        if lines and text_width(lines[-1] + " " + word, fnt) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def ink_on(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """White or near-black text, whichever reads better on ``colour`` (relative luminance)."""
    r, g, b = colour
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else WHITE


def region_colours(regions: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """An arbitrary, distinct colour per region (as in the paper), in order of first use."""
    out: dict[int, tuple[int, int, int]] = {}
    for r in regions:
        if r not in out:
            out[r] = PALETTE[len(out) % len(PALETTE)]
    return out


# -- photos and boxes -------------------------------------------------------------------------

def display_copy(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """``image`` scaled (aspect kept) to ``size`` px on its longer side."""
    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.convert("RGB").resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def _rect_overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_label(box, w: int, h: int, bounds, placed: list) -> tuple[int, int]:
    """Where a ``w`` x ``h`` label of ``box`` (pixels) goes: the first of the box's corners,
    inside or just outside, that stays within ``bounds`` and covers no label placed so far;
    else the one that covers least. A label that would hide much of a small box goes
    outside it first (above, then below)."""
    x0, y0, x1, y1 = box
    inside = [(x0, y0), (x0, y1 - h), (x1 - w, y0), (x1 - w, y1 - h)]
    outside = [(x0, y0 - h), (x0, y1), (x1 - w, y0 - h), (x1 - w, y1)]
    small = w > x1 - x0 or 3 * h > y1 - y0
    candidates = [c for pair in zip(*((outside, inside) if small else (inside, outside))) for c in pair]
    best, best_cost = None, None
    for cx, cy in candidates:
        # Clamp into the picture: a label is never cut off at an edge.
        cx = min(max(cx, bounds[0]), bounds[2] - w)
        cy = min(max(cy, bounds[1]), bounds[3] - h)
        cost = sum(_rect_overlap((cx, cy, cx + w, cy + h), p) for p in placed)
        if best_cost is None or cost < best_cost:
            best, best_cost = (int(cx), int(cy)), cost
        if cost == 0:
            break
    return best


def draw_tagged_boxes(canvas: Image.Image, origin: tuple[int, int], size: tuple[int, int], boxes: np.ndarray,
                      tags: dict[int, tuple[list[str], tuple[int, int, int]]], line: int = 3) -> None:
    """Boxes ``tags`` names (region -> (label lines, colour)), drawn on the photo pasted at
    ``origin`` with ``size``, each with its label on a patch of its colour. Larger boxes go
    first so smaller ones stay visible on top; labels of smaller boxes are placed first,
    since they have fewer good places."""
    draw = ImageDraw.Draw(canvas)
    ox, oy = origin
    px = to_pixels(boxes, *size) + np.array([ox, oy, ox, oy])
    area = {r: float((px[r, 2] - px[r, 0]) * (px[r, 3] - px[r, 1])) for r in tags}
    for r in sorted(tags, key=lambda r: -area[r]):
        x0, y0, x1, y1 = px[r]
        # Inset by half the line so a whole-image box (region 0) stays fully visible.
        draw.rectangle((x0 + line // 2, y0 + line // 2, x1 - 1 - line // 2, y1 - 1 - line // 2),
                       outline=tags[r][1], width=line)
    fnt = font(14)
    lh = line_height(fnt)
    bounds = (ox, oy, ox + size[0], oy + size[1])
    placed: list[tuple[int, int, int, int]] = []
    for r in sorted(tags, key=lambda r: area[r]):
        lines, colour = tags[r]
        w = max(text_width(t, fnt) for t in lines) + 8
        h = lh * len(lines) + 4
        x, y = place_label(px[r], w, h, bounds, placed)
        placed.append((x, y, x + w, y + h))
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=colour)
        for k, text in enumerate(lines):
            draw.text((x + 4, y + 2 + k * lh), text, font=fnt, fill=ink_on(colour))


def pack(items: Sequence[str], fnt, width: int, sep: str = ", ") -> list[str]:
    """``items`` joined with ``sep`` into as few lines of at most ``width`` px as fit."""
    lines: list[str] = []
    for item in items:
        if lines and text_width(lines[-1] + sep + item, fnt) <= width:
            lines[-1] += sep + item
        else:
            lines.extend(wrap(item, fnt, width))
    return lines


def save_png(image: Image.Image, path: str | os.PathLike, colours: int | None = 256) -> None:
    """Write ``image`` as a PNG, atomically (a crash never leaves half a file). With
    ``colours``, as a palette image with error diffusion: the photos drawn are small sources
    upscaled, so 256 well-chosen colours look the same and take about a third of the bytes
    (a contact sheet of 48 crops: 310 KB against 840 KB)."""
    from scenetalk.errors import ScenetalkError
    from scenetalk.io import atomic_path

    if colours:
        palette = image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
        image = image.convert("RGB").quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    try:
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG", optimize=True)
    except OSError as exc:   # an unwritable --out is the user's to fix: one line, no traceback
        raise ScenetalkError(f"{path}: cannot write the picture ({exc.strerror or exc})") from None


# -- Figure 5: words on regions -----------------------------------------------------------------

def _chips(draw: ImageDraw.ImageDraw, tokens: Sequence[str], items: Sequence[Link],
           colours: dict[int, tuple[int, int, int]], left: int, top: int, width: int) -> int:
    """The sentence as a row of chips, one per link, wrapped at ``width``: the words on their
    region's colour, and under them the region number and score (grey chips: hidden links).
    A chip wider than the row (a long MRF segment) breaks its words over several lines, so no
    word is lost. Returns the bottom edge."""
    big, small = font(15, bold=True), font(11)
    hb, hs, pad, gap = line_height(big), line_height(small), 5, 6
    x, y, row_bottom = left, top, top
    for link in items:
        lines = wrap(link.text(tokens), big, width - 2 * pad)
        note = f"#{link.region}  {link.score:.2f}" if link.shown else f"{link.score:.2f}"
        w = min(max([text_width(t, big) for t in lines] + [text_width(note, small)]) + 2 * pad, width)
        h = hb * len(lines) + hs + 2 * pad
        if x > left and x + w > left + width:
            x, y = left, row_bottom + gap
        fill = colours[link.region] if link.shown else PALE
        ink = ink_on(fill) if link.shown else GREY
        draw.rounded_rectangle((x, y, x + w, y + h), radius=4, fill=fill)
        for k, text in enumerate(lines):
            draw.text((x + pad, y + pad + k * hb), text, font=big, fill=ink)
        draw.text((x + pad, y + pad + hb * len(lines)), note, font=small, fill=ink)
        x, row_bottom = x + w + gap, max(row_bottom, y + h)
    return row_bottom


def alignment_panel(image: Image.Image, tokens: Sequence[str], items: Sequence[Link], boxes: np.ndarray,
                    colours: dict[int, tuple[int, int, int]], title: str) -> Image.Image:
    """One panel of Figure 5: the photo with each shown link's words and score on its
    region's box, and the whole sentence below as chips in the regions' colours."""
    photo = display_copy(image)
    width = photo.width + 2 * MARGIN
    title_font = font(16, bold=True)
    top = MARGIN + line_height(title_font) + 6
    # Draw the chips on a tall scratch canvas first: the panel's height depends on how the
    # sentence wraps (60 px a word is more than a chip line and its note take).
    canvas = Image.new("RGB", (width, top + photo.height + 60 * (len(tokens) + 1)), WHITE)
    canvas.paste(photo, (MARGIN, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN, MARGIN), title, font=title_font, fill=INK)
    tags: dict[int, tuple[list[str], tuple[int, int, int]]] = {}
    by_region: dict[int, list[str]] = {}
    for link in items:
        if link.shown:
            by_region.setdefault(link.region, []).append(f"{link.text(tokens)} {link.score:.2f}")
    for region, texts in by_region.items():
        tags[region] = (pack(texts, font(14), int(photo.width * 0.9) - 8), colours[region])
    draw_tagged_boxes(canvas, (MARGIN, top), photo.size, boxes, tags)
    bottom = _chips(draw, tokens, items, colours, MARGIN, top + photo.height + 10, photo.width)
    return canvas.crop((0, 0, width, bottom + MARGIN))


def side_by_side(panels: Sequence[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), WHITE)
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width
    return out


def alignment_picture(image: Image.Image, tokens: Sequence[str], unary: np.ndarray, boxes: np.ndarray,
                      assignment: Sequence[int] | np.ndarray, beta: float | None = None,
                      min_score: float = LOW_SCORE, known: Sequence[bool] | None = None) -> Image.Image:
    """Figure 5 before and after MRF smoothing, side by side: left, every word on its
    highest-scoring region (β = 0); right, the runs of words that ``assignment`` (the MRF's,
    with ``beta``) puts on one region, with their summed scores. unary (T, M) = v_iᵀ s_t,
    boxes (M, 4) normalised (arrays, or anything ``np.asarray`` reads); ``known[t]`` False
    marks words the model does not know (scored as ``<unk>``), which are never linked. A
    region has one colour in both panels."""
    unary, boxes = np.asarray(unary)[:len(tokens)], np.asarray(boxes)
    best = links(unary, unary.argmax(axis=1), per_word=True, min_score=min_score, known=known)
    mrf = links(unary, assignment, min_score=min_score, known=known)
    colours = region_colours([link.region for link in best + mrf if link.shown])
    right = "MRF segments" + ("" if beta is None else f" (β = {beta:g})")
    return side_by_side([alignment_panel(image, tokens, best, boxes, colours, "each word's best region (β = 0)"),
                         alignment_panel(image, tokens, mrf, boxes, colours, right)])


def word_alignment_picture(alignment: WordAlignment) -> Image.Image:
    """``alignment_picture`` of a ``WordAlignment`` (``Scenetalk.align``)."""
    return alignment_picture(alignment.photo, alignment.tokens, alignment.unary, alignment.boxes,
                             [w.mrf_region for w in alignment.words], beta=alignment.beta,
                             min_score=alignment.min_score, known=[w.known for w in alignment.words])


# -- Figure 7: region descriptions ------------------------------------------------------------------

def regions_picture(image: Image.Image, boxes: np.ndarray, labels: Sequence[tuple[str, str]],
                    title: str | None = None, column: int = 330) -> Image.Image:
    """Figure 7: the photo with ``boxes`` (K, 4) and, in a column on its right, each box's
    label (``labels[k]`` = (phrase, small note)) in the box's colour with a line to its centre.
    Labels follow the height of their box's centres, reordered where lines would cross."""
    photo = display_copy(image)
    big, small = font(15, bold=True), font(11)
    hb, hs, gap = line_height(big), line_height(small), 10
    colours = [PALETTE[k % len(PALETTE)] for k in range(len(boxes))]
    blocks = [(wrap(phrase, big, column - MARGIN), note) for phrase, note in labels]
    heights = [hb * len(lines) + hs for lines, _ in blocks]
    title_h = line_height(font(13)) + 8 if title else 0
    top = MARGIN + title_h
    px = to_pixels(boxes, *photo.size) + np.array([MARGIN, top, MARGIN, top])
    centres = (px[:, :2] + px[:, 2:]) / 2
    label_x = MARGIN + photo.width + 40
    anchor_x = label_x - 6      # where a label's line ends
    order = sorted(range(len(boxes)), key=lambda k: centres[k, 1])
    ys = _column_layout(order, centres[:, 1], heights, top, top + photo.height, gap)
    # Ordering by height alone still crosses lines when boxes sit side by side; swap
    # neighbours whose lines cross until none do (a few passes at most for a handful of labels).
    for _ in range(len(order) ** 2):
        swapped = False
        for j in range(len(order) - 1):
            a, b = order[j], order[j + 1]
            if _crosses(centres[a], (anchor_x, ys[a] + hb / 2), centres[b], (anchor_x, ys[b] + hb / 2)):
                order[j], order[j + 1] = b, a
                ys = _column_layout(order, centres[:, 1], heights, top, top + photo.height, gap)
                swapped = True
        if not swapped:
            break
    bottom = max([top + photo.height] + [ys[k] + heights[k] for k in order])
    canvas = Image.new("RGB", (label_x + column, int(bottom) + MARGIN), WHITE)
    canvas.paste(photo, (MARGIN, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((MARGIN, MARGIN), title, font=font(13), fill=GREY)
    for k in sorted(range(len(boxes)), key=lambda k: -(px[k, 2] - px[k, 0]) * (px[k, 3] - px[k, 1])):
        x0, y0, x1, y1 = px[k]
        draw.rectangle((x0 + 1, y0 + 1, x1 - 2, y1 - 2), outline=colours[k], width=3)
    for k in order:
        lines, note = blocks[k]
        y = ys[k]
        cx, cy = centres[k]
        anchor = (anchor_x, y + hb / 2)
        # A white halo under the coloured line keeps it visible across any photo.
        draw.line((cx, cy, *anchor), fill=WHITE, width=4)
        draw.line((cx, cy, *anchor), fill=colours[k], width=2)
        draw.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=colours[k], outline=WHITE)
        for j, text in enumerate(lines):
            draw.text((label_x, y + j * hb), text, font=big, fill=colours[k])
        draw.text((label_x, y + hb * len(lines)), note, font=small, fill=GREY)
    return canvas


def region_descriptions_picture(descriptions: RegionDescriptions) -> Image.Image:
    """``regions_picture`` of a ``RegionDescriptions`` (``Scenetalk.regions``): each box's
    phrase, and under it the region's number, class, detector score and the phrase's log p."""
    labels = [(r["phrase"], f"#{r['region']} {r['class']} {r['detector_score']:.2f} · log p {r['log_prob']:.1f}")
              for r in descriptions.regions]
    return regions_picture(descriptions.photo, descriptions.boxes, labels,
                           title=f"phrases by {descriptions.generator_description}")


def _column_layout(order: Sequence[int], want: np.ndarray, heights: Sequence[int], top: float, bottom: float,
                   gap: int) -> dict[int, float]:
    """Tops of labels stacked in ``order`` in a column: each label wants its middle at
    ``want[k]``; pushed down to clear the one above, then, if the column overflows
    ``bottom``, pulled up from the bottom."""
    ys: dict[int, float] = {}
    floor = top
    for k in order:
        ys[k] = max(floor, want[k] - heights[k] / 2)
        floor = ys[k] + heights[k] + gap
    ceiling = max(bottom, top + sum(heights[k] for k in order) + gap * (len(order) - 1))
    for k in reversed(order):
        ys[k] = min(ys[k], ceiling - heights[k])
        ceiling = ys[k] - gap
    return ys


def _crosses(p1, p2, q1, q2) -> bool:
    """Whether segments p1-p2 and q1-q2 cross (orientation test)."""
    def side(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


# -- Figures 9-10: best regions for snippets ---------------------------------------------------------

def crop_region(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """The part of ``image`` inside the normalised ``box`` (at least one pixel)."""
    x0, y0, x1, y1 = to_pixels(box, *image.size)[0]
    x0, y0 = int(np.floor(x0)), int(np.floor(y0))
    return image.crop((x0, y0, max(x0 + 1, int(np.ceil(x1))), max(y0 + 1, int(np.ceil(y1)))))


def snippet_sheet(rows: Sequence[tuple[str, Sequence[tuple[Image.Image, str]]]], cell: int = 120,
                  label_width: int | None = None, title: str | None = None) -> Image.Image:
    """A contact sheet: one row per snippet, its label on the left, then its regions' crops
    (each fitted, aspect kept, into a ``cell`` px square) with a caption (the score) under each.
    The label column is as wide as the longest label (at most 200 px; longer ones wrap)."""
    big, small = font(15, bold=True), font(12)
    cap_h, gap = line_height(small) + 4, 6
    if label_width is None:
        label_width = min(200, max([text_width(label, big) for label, _ in rows] + [60]) + 16)
    title_h = line_height(font(13)) + 8 if title else 0
    columns = max([len(crops) for _, crops in rows] + [1])
    row_h = cell + cap_h + gap
    width = MARGIN + label_width + columns * (cell + gap) + MARGIN
    canvas = Image.new("RGB", (width, MARGIN + title_h + len(rows) * row_h + MARGIN), WHITE)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((MARGIN, MARGIN), title, font=font(13), fill=GREY)
    for r, (label, crops) in enumerate(rows):
        y = MARGIN + title_h + r * row_h
        lines = wrap(label, big, label_width - 10)
        ly = y + (cell - line_height(big) * len(lines)) / 2
        for j, text in enumerate(lines):
            draw.text((MARGIN, ly + j * line_height(big)), text, font=big, fill=INK)
        for c, (crop, caption) in enumerate(crops):
            x = MARGIN + label_width + c * (cell + gap)
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=PALE)
            fitted = ImageOps.contain(crop.convert("RGB"), (cell, cell), Image.Resampling.BICUBIC)
            canvas.paste(fitted, (x + (cell - fitted.width) // 2, y + (cell - fitted.height) // 2))
            draw.text((x + cell / 2, y + cell + 2), caption, font=small, fill=INK, anchor="ma")
    return canvas


# -- detections (scenetalk demo) -------------------------------------------------------------------

def detections_picture(panels: Sequence[tuple[Image.Image, str, np.ndarray, Sequence[str]]],
                       size: int = 400) -> Image.Image:
    """Photos side by side, each as (photo, title, boxes (K, 4) normalised, a label per box):
    the title above the photo, its lines (``\\n``) wrapped to the photo's width, the first in
    bold; the boxes with their labels drawn as the alignment panels draw regions. Photos are
    drawn ``size`` px on their longer side; every title fits, however long."""
    bold, plain = font(13, bold=True), font(13)
    drawn = []
    for image, title, boxes, labels in panels:
        photo = display_copy(image, size)
        paragraphs = title.split("\n")
        lines = [(t, bold) for t in wrap(paragraphs[0], bold, photo.width)]
        lines += [(t, plain) for p in paragraphs[1:] for t in wrap(p, plain, photo.width)]
        drawn.append((photo, lines, np.asarray(boxes).reshape(-1, 4), labels))
    title_h = max(sum(line_height(f) for _, f in lines) for _, lines, _, _ in drawn) + 6
    out = []
    for photo, lines, boxes, labels in drawn:
        canvas = Image.new("RGB", (photo.width + 2 * MARGIN, MARGIN + title_h + photo.height + MARGIN), WHITE)
        draw = ImageDraw.Draw(canvas)
        y = MARGIN
        for text, fnt in lines:
            draw.text((MARGIN, y), text, font=fnt, fill=INK)
            y += line_height(fnt)
        canvas.paste(photo, (MARGIN, MARGIN + title_h))
        width = int(photo.width * 0.9) - 8
        tags = {k: (wrap(label, font(14), width), PALETTE[k % len(PALETTE)]) for k, label in enumerate(labels)}
        draw_tagged_boxes(canvas, (MARGIN, MARGIN + title_h), photo.size, boxes, tags)
        out.append(canvas)
    return side_by_side(out)


# -- human boxes (Flickr30K Entities) -------------------------------------------------------------

def labelled_boxes_picture(image: Image.Image, boxes: np.ndarray, labels: Sequence[str],
                           colours: Sequence[tuple[int, int, int]], title: str | None = None) -> Image.Image:
    """The photo with ``boxes`` (K, 4), each with its label on a patch of its colour, drawn as
    the alignment panels draw regions (``draw_tagged_boxes``); boxes of one thing (e.g. each
    of "two dogs") may share a colour and a label. Used for the human boxes of a report."""
    photo = display_copy(image)
    title_h = line_height(font(13)) + 8 if title else 0
    top = MARGIN + title_h
    canvas = Image.new("RGB", (photo.width + 2 * MARGIN, top + photo.height + MARGIN), WHITE)
    canvas.paste(photo, (MARGIN, top))
    if title:
        ImageDraw.Draw(canvas).text((MARGIN, MARGIN), title, font=font(13), fill=GREY)
    width = int(photo.width * 0.9) - 8
    tags = {k: (wrap(label, font(14), width), colour) for k, (label, colour) in enumerate(zip(labels, colours))}
    draw_tagged_boxes(canvas, (MARGIN, top), photo.size, np.asarray(boxes), tags)
    return canvas


# -- captions side by side (new words, docs/new-words.md) -----------------------------------

def captions_picture(rows: Sequence[tuple[Image.Image, Sequence[tuple[str, str]]]], photo: int = 160,
                     text_width_px: int = 420, title: str | None = None) -> Image.Image:
    """One row per photo: the photo (``photo`` px square, aspect kept), then its captions, each
    a bold label ("before", "after: NVCL, 10 photos") over the wrapped sentence."""
    big, small = font(13, bold=True), font(14)
    gap, title_h = 10, (line_height(font(13)) + 8 if title else 0)
    blocks = [[(label, wrap(text, small, text_width_px)) for label, text in captions] for _, captions in rows]
    heights = [max(photo, sum(line_height(big) + line_height(small) * len(lines) + 6 for _, lines in block))
               for block in blocks]
    width = MARGIN + photo + gap + text_width_px + MARGIN
    canvas = Image.new("RGB", (width, MARGIN + title_h + sum(h + gap for h in heights) + MARGIN), WHITE)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((MARGIN, MARGIN), title, font=font(13), fill=GREY)
    y = MARGIN + title_h
    for (image, _), block, h in zip(rows, blocks, heights):
        fitted = ImageOps.contain(image.convert("RGB"), (photo, photo), Image.Resampling.BICUBIC)
        canvas.paste(fitted, (MARGIN, y))
        ty = y
        for label, lines in block:
            draw.text((MARGIN + photo + gap, ty), label, font=big, fill=GREY)
            ty += line_height(big)
            for line in lines:
                draw.text((MARGIN + photo + gap, ty), line, font=small, fill=INK)
                ty += line_height(small)
            ty += 6
        y += h + gap
    return canvas
