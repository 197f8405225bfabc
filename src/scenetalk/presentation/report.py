"""An HTML report of what the models say about some test photos (the grounding issue):
for each photo its generated caption, the human sentences of the split that the alignment
model ranks nearest to it (S_kl, eq. 8), the words of its best-scoring own sentence on
regions before and after the MRF (Figure 5), phrases generated for its best detections
(Figure 7), and the human boxes of Flickr30K Entities for comparison.

Everything is read from a feature store (no backbone or detector is run) and written as one
self-contained folder: ``index.html`` (inline CSS, no scripts, relative links) and its PNGs.
The folder is built beside the target under a temporary name and renamed into place, so an
interrupted run never leaves half a report.
"""

from __future__ import annotations

import contextlib
import html
import os
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scenetalk.checks import finite_number
from scenetalk.data.schema import CaptionDataset, ImageRecord
from scenetalk.errors import ScenetalkError
from scenetalk.weights import shipped_folder

#: Nearest human sentences shown per photo.
NEAREST = 5
BEAM = 7
#: Longest generated region phrase, in words (as ``scenetalk regions``).
PHRASE_MAX_LEN = 16
INDEX = "index.html"


# -- choosing photos and checking inputs ----------------------------------------------------------

def pick_images(dataset: CaptionDataset, split: str, n: int, seed: int,
                names: Sequence[str] | None = None) -> list[ImageRecord]:
    """The photos of the report: ``names`` (each must be in ``split``), else ``n`` of the
    split drawn with ``seed`` (all of them when it has fewer)."""
    images = dataset.split(split)
    if not images:
        raise ScenetalkError(f"dataset {dataset.name!r} has no images in split {split!r}")
    if names is None:
        return random.Random(seed).sample(images, min(n, len(images)))
    by_name = {im.relpath: im for im in images}
    split_of = {im.relpath: im.split for im in dataset.images}
    out = []
    for name in dict.fromkeys(names):   # a name given twice is shown once
        if name in by_name:
            out.append(by_name[name])
        elif name in split_of:
            raise ScenetalkError(f"--images: {name!r} is in the {split_of[name]} split of {dataset.name}, "
                                 f"not {split}; pass --split {split_of[name]}")
        else:
            raise ScenetalkError(f"--images: no image {name!r} in the {split} split of {dataset.name} "
                                 f"({len(images):,} images, e.g. {images[0].relpath!r})")
    if not out:
        raise ScenetalkError("--images: give at least one image name")
    return out


def shown_path(path: Path) -> str:
    """A checkpoint as the report names it: shipped ones by their place in the package, so a
    committed report does not carry this machine's folders."""
    weights = shipped_folder("captioner").parent.resolve()
    with contextlib.suppress(ValueError):
        return "scenetalk/weights/" + Path(path).resolve().relative_to(weights).as_posix() + " (shipped)"
    return os.fspath(path)


@contextlib.contextmanager
def report_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A new empty folder beside ``out`` to write the report into, renamed to ``out`` when the
    block succeeds and removed when it fails. An old report at ``out`` is replaced; any other
    non-empty folder or a file is refused, so a mistyped --out never deletes someone's work."""
    from scenetalk.io import atomic_folder

    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / INDEX).is_file() or not any(out.iterdir()))):
        raise ScenetalkError(f"{out}: exists and is not a report folder (no {INDEX}); "
                             "choose another --out or remove it")
    with contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_folder(out))
        except OSError as exc:
            raise ScenetalkError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
        yield tmp


# -- what is shown of one photo ------------------------------------------------------------------------

@dataclass
class Ranked:
    """One human sentence of the split, ranked for a photo by S_kl."""
    text: str
    score: float
    own: bool


@dataclass
class Chain:
    """One thing the Flickr30K Entities annotators boxed: its phrases over the photo's five
    sentences (each once, most frequent first), types and boxes."""
    phrases: list[str]
    types: list[str]
    boxes: np.ndarray


class Picture(NamedTuple):
    file: str                       # in the report folder
    width: int
    height: int


@dataclass
class PhotoReport:
    image: ImageRecord
    caption: str
    caption_log_prob: float
    nearest: list[Ranked]
    own_ranks: list[int]            # rank (1 = best) of each own sentence among all of the split's
    ranked: int                     # how many sentences were ranked (the split's)
    aligned: Ranked | None          # the best-scoring own sentence, drawn on regions
    pictures: dict[str, Picture] = field(default_factory=dict)   # "alignment", "regions", "humans"
    regions: list[dict] = field(default_factory=list)        # region, class, detector_score, phrase, log_prob
    chains: list[Chain] | None = None                        # None: no Flickr30K Entities for the photo
    chains_note: str = ""


def human_chains(entity) -> list[Chain]:
    """The boxed chains of an ``EntityImage``, in order of first mention; chains without a
    box (scenes like "the snow", "not visual" phrases) are left out."""
    chains: dict[str, tuple[Counter, list[str], np.ndarray]] = {}
    for sentence in entity.sentences:
        for p in sentence.phrases:
            if len(p.boxes):
                texts, types, boxes = chains.setdefault(p.chain_id, (Counter(), [], p.boxes))
                texts[p.text.lower()] += 1
                types.extend(t for t in p.types if t not in types)
    return [Chain([t for t, _ in texts.most_common()], types, boxes) for texts, types, boxes in chains.values()]


def load_chains(entities_root: Path, name: str) -> tuple[list[Chain] | None, str]:
    """The human boxes of one photo, or None and why not: a report still shows the rest of a
    photo whose annotation is missing or unreadable."""
    from scenetalk.data.entities import load_entities

    if not entities_root.is_dir():
        return None, f"no Flickr30K Entities at {entities_root}"
    try:
        found = load_entities(entities_root, [name], missing="skip")
    except ScenetalkError as exc:
        return None, str(exc)
    if name not in found:
        return None, f"not annotated in Flickr30K Entities ({entities_root})"
    return human_chains(found[name]), ""


# -- building the report ---------------------------------------------------------------------------------

@dataclass
class Models:
    captioner: Path
    alignment: Path
    region_generator: Path
    region_generator_what: str      # how the report names it ("the shipped full-photo captioner ...")


def build_report(dataset: CaptionDataset, store, split: str, images: Sequence[ImageRecord], models: Models,
                 beta: float, top_regions: int, entities_root: Path, out: str | os.PathLike,
                 header: dict[str, str], progress: bool = True) -> list[PhotoReport]:
    """Compute everything shown for ``images`` and write the report folder ``out``."""
    from scenetalk.captioning.captioner import Captioner, caption_features, default_length_penalty, load_generator_for
    from scenetalk.checkpoint import load_alignment_engine
    from scenetalk.grounding.word_regions import align_sentences, word_region_scores
    from scenetalk.presentation.pictures import PALETTE, alignment_picture
    from scenetalk.progress import progress_bar
    from scenetalk.retrieval.scoring import score_split, sentence_set
    from scenetalk.vision.images import load_image

    rows = store.rows([im.relpath for im in images])          # FeatureStoreError names a missing photo
    if dataset.image_dir is None:
        raise ScenetalkError(f"dataset {dataset.name!r}: where its photos are is unknown; pass --root")
    missing = [im.relpath for im in images if not (Path(dataset.image_dir) / im.relpath).is_file()]
    if missing:
        raise ScenetalkError(f"{Path(dataset.image_dir) / missing[0]}: photo not found "
                             f"({len(missing)} of the report's {len(images)} are missing)")
    aligner, a_vocab, a_meta = load_alignment_engine(models.alignment, expect_extractor_id=store.extractor_id)
    # The captioner reads the photo files as `scenetalk caption` does: whatever it reads (a grid,
    # say) need not be in the store, which the report needs for its regions.
    captioner = Captioner(models.captioner)
    describer, d_vocab, d_meta = load_generator_for(models.region_generator, store, one_vector=True)
    max_words = int(a_meta.get("train_config", {}).get("max_words", 40))

    with report_folder(out) as folder:
        # Only the report's photos' regions are read from the memory map: the whole store as
        # float32 (``model_input``) would be 800 MB for Flickr8K.
        regions = np.asarray(store.regions[rows], dtype=np.float32)
        boxes, box_scores, box_classes = store.boxes[rows], store.box_scores[rows], store.box_classes[rows]

        # Every human sentence of the split against the report's photos only: the sentence
        # set is indexed by position in the split, and S is computed for these images.
        split_images = dataset.split(split)
        position = {im.relpath: k for k, im in enumerate(split_images)}
        sentences = sentence_set(dataset, split, a_vocab, position, max_words)
        texts = [s for im in split_images for s in im.sentences]
        if progress:
            print(f"scenetalk report: ranking the {len(texts):,} {split} sentences for {len(images)} photos",
                  file=sys.stderr)
        scores = score_split(aligner, regions, replace(sentences, images=np.arange(len(images))))

        # The best-scoring own sentence of each photo, aligned to its regions (eq. 10-12).
        own = [np.flatnonzero(sentences.image_of == position[im.relpath]) for im in images]
        best_own = [int(o[scores[i, o].argmax()]) if len(o) else None for i, o in enumerate(own)]
        tokens = [texts[j].tokens[:max_words] if j is not None else [] for j in best_own]
        unary, mask = word_region_scores(aligner, a_vocab, regions, tokens, list(range(len(images))))
        assignment = align_sentences(unary, mask, beta)

        captions = captioner.caption([Path(dataset.image_dir) / im.relpath for im in images], beam_size=BEAM)
        # Regions 1-19 by detector score, as ``scenetalk regions`` picks them (stable, so equal
        # scores keep the detector's order; grid fillers, score 0, come last).
        chosen = [1 + np.argsort(-box_scores[i, 1:], kind="stable")[:top_regions] for i in range(len(images))]

        reports = []
        bar = progress_bar(total=len(images), unit="photo", desc="report", disable=not progress)
        for i, im in enumerate(images):
            photo = load_image(Path(dataset.image_dir) / im.relpath)
            stem = f"{i + 1:02d}"
            ranking = np.argsort(-scores[i], kind="stable")
            rank_of = {int(j): r + 1 for r, j in enumerate(ranking.tolist())}
            own_set = set(own[i].tolist())
            rep = PhotoReport(
                im, captions[i][0].text, captions[i][0].log_prob,
                [Ranked(texts[j].raw, float(scores[i, j]), j in own_set) for j in ranking[:NEAREST].tolist()],
                sorted(rank_of[j] for j in own_set), len(texts),
                None if best_own[i] is None else Ranked(texts[best_own[i]].raw, float(scores[i, best_own[i]]), True))

            if rep.aligned is not None and tokens[i]:
                n = len(tokens[i])
                known = [t in a_vocab.stoi for t in tokens[i]]
                picture = alignment_picture(photo, tokens[i], unary[i, :n], boxes[i], assignment[i, :n],
                                            beta=beta, known=known)
                rep.pictures["alignment"] = _save(picture, folder, f"{stem}-alignment.png")

            feats = np.asarray(store.regions[rows[i]][chosen[i]], dtype=np.float32)
            phrases = caption_features(describer, d_vocab, feats, beam_size=BEAM, max_len=PHRASE_MAX_LEN,
                                       length_penalty=default_length_penalty(d_meta))
            rep.regions = [{"region": int(k), "class": store.class_name(box_classes[i, k]),
                            "detector_score": float(box_scores[i, k]), "phrase": c[0].text,
                            "log_prob": c[0].log_prob} for k, c in zip(chosen[i], phrases)]
            rep.pictures["regions"] = _save(_regions_picture(photo, boxes[i][chosen[i]], rep.regions,
                                                             models.region_generator_what),
                                            folder, f"{stem}-regions.png")

            rep.chains, rep.chains_note = load_chains(entities_root, im.relpath)
            if rep.chains:
                rep.pictures["humans"] = _save(_humans_picture(photo, rep.chains, PALETTE), folder,
                                               f"{stem}-humans.png")
            reports.append(rep)
            bar.update(1)
        bar.close()
        from scenetalk.io import atomic_write_text

        atomic_write_text(folder / INDEX, render_html(header, reports, beta))
    return reports


@dataclass
class ReportSummary:
    """What ``write_report`` wrote: the report's page, how many photos and pictures it shows,
    and (for Python callers, not in JSON) everything shown of each photo."""
    index: str
    photos: int
    pictures: int
    reports: list[PhotoReport] = field(default_factory=list, metadata={"json": False})


def write_report(features: str | os.PathLike, out: str | os.PathLike, root: str | os.PathLike | None = None,
                 dataset: str = "flickr8k", split: str = "test", n: int = 20, seed: int = 0,
                 images: Sequence[str] | None = None, alignment: str | os.PathLike | None = None,
                 captioner: str | os.PathLike | None = None, region_generator: str | os.PathLike | None = None,
                 beta: float | None = None, top_regions: int = 5, progress: bool = True,
                 command: str | None = None) -> ReportSummary:
    """The report folder ``out`` of ``images`` of ``split`` (photo names), else of ``n`` photos
    drawn with ``seed`` (``pick_images``), from the feature store ``features`` (with region
    features) and the dataset under ``root`` (default ``data.registry.default_root()``; Flickr30K
    Entities from ``root/flickr30k_entities``). The models default to the shipped captioner,
    alignment model and region generator (``scenetalk.weights``); ``beta`` (the MRF's bonus for
    neighbouring words on one region, eq. 10) to ``grounding.word_regions.ALIGN_BETA``, as the
    alignment pictures of ``Scenetalk.align`` draw (at the snippet corpus's ``DEFAULT_BETA`` the
    segments of 38% of Flickr8K val sentences link nothing; BENCHMARKS.md);
    ``top_regions`` detections are described per photo. The page's header names every input,
    and ``command``, the command line that makes the report again, when given."""
    from importlib.metadata import version

    from scenetalk.data.registry import default_root, load_dataset
    from scenetalk.features.store import FeatureStore
    from scenetalk.grounding.word_regions import ALIGN_BETA
    from scenetalk.weights import region_generator as shipped_region_generator
    from scenetalk.weights import shipped_alignment, shipped_captioner

    beta = ALIGN_BETA if beta is None else beta
    if n < 1:
        raise ScenetalkError(f"--n must be at least 1 (got {n})")
    beta = finite_number("beta (--beta)", beta, low=0)
    if not 1 <= top_regions <= 19:
        raise ScenetalkError(f"--top-regions must be between 1 and 19, the detections kept per photo "
                             f"(got {top_regions})")
    root = Path(root) if root else default_root()
    data = load_dataset(dataset, root=root)
    chosen_images = pick_images(data, split, n, seed, images)
    store = FeatureStore.open(features)
    if not store.has_regions:
        raise ScenetalkError(f"{features}: has no region features; extract them with `scenetalk features --regions`")
    if region_generator:
        region_generator, which = Path(region_generator), f"the generator in {region_generator}"
    else:
        region_generator, which = shipped_region_generator()
    models = Models(Path(captioner) if captioner else shipped_captioner(),
                    Path(alignment) if alignment else shipped_alignment(), region_generator, which)
    chosen = (f"{len(chosen_images)} drawn with seed {seed}" if images is None
              else f"{len(chosen_images)} named with --images")
    header = {
        "title": f"scenetalk report: {data.name} {split}, {len(chosen_images)} photos",
        "photos": f"{chosen} from the {len(data.split(split)):,} of the {split} split",
        "feature store": f"{features} ({store.extractor_id})",
        "captioner": shown_path(models.captioner),
        "alignment model": shown_path(models.alignment),
        "region generator": f"{shown_path(models.region_generator)}: {which}",
        "MRF β": f"{beta:g}",
        # The installed version (pyproject's, as ``scenetalk.__version__``): the package itself
        # imports the façade, which this module is below.
        "scenetalk": version("scenetalk"),
    }
    if command is not None:
        header["command"] = command
    reports = build_report(data, store, split, chosen_images, models, beta, top_regions,
                           root / "flickr30k_entities", out, header, progress=progress)
    return ReportSummary(os.fspath(Path(out) / INDEX), len(reports), sum(len(r.pictures) for r in reports), reports)


def _save(picture, folder: Path, name: str) -> Picture:
    from scenetalk.presentation.pictures import save_png

    save_png(picture, folder / name)
    return Picture(name, *picture.size)


def _regions_picture(photo, boxes: np.ndarray, regions: list[dict], which: str):
    from scenetalk.presentation.pictures import regions_picture

    labels = [(r["phrase"], f"#{r['region']} {r['class']} {r['detector_score']:.2f} · log p {r['log_prob']:.1f}")
              for r in regions]
    return regions_picture(photo, boxes, labels, title=f"phrases by {which}")


def _humans_picture(photo, chains: list[Chain], palette):
    """Every box of every chain, a chain's boxes in one colour with its most frequent phrase."""
    from scenetalk.presentation.pictures import labelled_boxes_picture

    boxes, labels, colours = [], [], []
    for k, chain in enumerate(chains):
        for box in chain.boxes:
            boxes.append(box)
            labels.append(chain.phrases[0])
            colours.append(palette[k % len(palette)])
    return labelled_boxes_picture(photo, np.stack(boxes), labels, colours,
                                  title="human boxes and phrases (Flickr30K Entities)")


# -- HTML ------------------------------------------------------------------------------------------------------

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       max-width: 1400px; margin: 0 auto; padding: 0 24px 48px; }
h1 { font-size: 26px; margin: 28px 0 6px; }
h2 { font-size: 20px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 2px solid #ddd; }
h3 { font-size: 13px; margin: 22px 0 6px; color: #666; text-transform: uppercase; letter-spacing: .05em; }
h3 sub { text-transform: none; }
table { border-collapse: collapse; }
td, th { padding: 3px 10px 3px 0; vertical-align: top; text-align: left; }
table.meta td:first-child { color: #666; white-space: nowrap; }
table.list td, table.list th { border-bottom: 1px solid #eee; }
table.list th { font-weight: 600; color: #666; font-size: 13px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f4f4f4; padding: 8px 12px; border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; }
nav ol { columns: 2; column-gap: 40px; padding-left: 28px; }
nav li { break-inside: avoid; }
section { margin: 36px 0; }
.caption { font-size: 21px; font-weight: 600; margin: 4px 0; }
.note { color: #777; font-size: 13px; margin: 2px 0; }
.badge { background: #e3f2e6; color: #1b6630; border-radius: 3px; padding: 0 6px; font-size: 12px; font-weight: 600; }
tr.own td { background: #f4faf5; }
tr.own .badge { margin-left: 6px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.pair > div { flex: 0 1 auto; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; }
a { color: #1a57b0; text-decoration: none; }
a:hover { text-decoration: underline; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def render_html(header: dict[str, str], reports: Sequence[PhotoReport], beta: float) -> str:
    """The report page: ``header`` (label -> value; "title" the heading, "command" shown as code) on top, then a
    table of contents and one section per photo. All text is escaped."""
    from scenetalk.presentation.pictures import PALETTE

    meta_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in header.items()
                        if k not in ("title", "command"))
    toc = "".join(f'<li><a href="#photo-{i}">{esc(r.image.relpath)}</a> <span class="note">{esc(r.caption)}</span></li>'
                  for i, r in enumerate(reports, 1))
    sections = "\n".join(_section(i, r, beta, PALETTE) for i, r in enumerate(reports, 1))
    title = header.get("title", "scenetalk report")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header id="top">
<h1>{esc(title)}</h1>
<table class="meta">{meta_rows}</table>
<h3>Command</h3>
<pre>{esc(header.get("command", ""))}</pre>
</header>
<nav>
<h3>Contents</h3>
<ol>{toc}</ol>
</nav>
{sections}
</body>
</html>
"""


def _img(picture: Picture | None, alt: str) -> str:
    # The size lets the browser lay the page out before the pictures load.
    return (f'<img src="{esc(picture.file)}" width="{picture.width}" height="{picture.height}" alt="{esc(alt)}">'
            if picture else "")


def _section(i: int, r: PhotoReport, beta: float, palette) -> str:
    from scenetalk.presentation.pictures import LOW_SCORE

    own_row, own_badge = ' class="own"', '<span class="badge">own</span>'
    nearest = "".join(
        f'<tr{own_row if s.own else ""}><td class="num">{k}</td><td class="num">{s.score:.2f}</td>'
        f'<td>{esc(s.text)}{own_badge if s.own else ""}</td></tr>'
        for k, s in enumerate(r.nearest, 1))
    ranks = ", ".join(str(k) for k in r.own_ranks)
    total = f"{r.ranked:,}"
    parts = [f'<section id="photo-{i}">',
             f"<h2>{i}. {esc(r.image.relpath)}</h2>",
             "<h3>Generated caption</h3>",
             f'<p class="caption">{esc(r.caption)}</p>',
             f'<p class="note">whole-photo captioner, beam {BEAM}; log p = {r.caption_log_prob:.2f}</p>',
             "<h3>Nearest human sentences (S<sub>kl</sub>)</h3>",
             f'<table class="list"><tr><th>rank</th><th>score</th><th>sentence</th></tr>{nearest}</table>',
             f'<p class="note">its own sentences rank {esc(ranks) or "(none)"} of {total}</p>']
    if r.aligned is not None:
        parts += ["<h3>Words on regions: its best-scoring own sentence</h3>",
                  (f'<p>{esc(r.aligned.text)} <span class="note">S<sub>kl</sub> = {r.aligned.score:.2f}; '
                   f"left: each word's best region, right: MRF segments (β = {beta:g}); grey, not linked: "
                   f"score at most {LOW_SCORE:g} (a segment's: summed over its words) or only words the model "
                   "does not know</span></p>"),
                  _img(r.pictures.get("alignment"), f"alignment of: {r.aligned.text}")]
    parts += ['<div class="pair">', "<div>", "<h3>Region phrases</h3>",
              _img(r.pictures.get("regions"), "generated region phrases: "
                   + "; ".join(x["phrase"] for x in r.regions)), "</div>",
              # As wide as its picture: its table of phrases wraps under it rather than widening
              # the column and pushing it below the region phrases.
              f'<div style="max-width: {r.pictures["humans"].width + 2}px">' if "humans" in r.pictures else "<div>",
              "<h3>Human boxes (Flickr30K Entities)</h3>"]
    if r.chains:
        rows = "".join(f'<tr><td><span class="swatch" style="background: rgb{palette[k % len(palette)]}"></span>'
                       f'{esc(" / ".join(c.phrases))}</td><td class="note">{esc(", ".join(c.types))}</td>'
                       f'<td class="num note">{len(c.boxes)} box{"es" if len(c.boxes) > 1 else ""}</td></tr>'
                       for k, c in enumerate(r.chains))
        parts += [_img(r.pictures.get("humans"), "human boxes: " + "; ".join(c.phrases[0] for c in r.chains)),
                  f'<table class="list">{rows}</table>']
    elif r.chains is not None:
        parts.append('<p class="note">no boxed phrases for this photo</p>')
    else:
        parts.append(f'<p class="note">{esc(r.chains_note)}</p>')
    parts += ["</div>", "</div>", '<p class="note"><a href="#top">back to the top</a></p>', "</section>"]
    return "\n".join(parts)
