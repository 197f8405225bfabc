"""One dataset of several languages: the same photos, each with its sentences in every language.

``merge_languages({"en": flickr8k, "zh": flickr8k_cn, "de": multi30k_de})`` gives one
``CaptionDataset`` whose images are the union of the parts' (matched by file path), each
with the sentences of every part that has it; a sentence keeps its language and its tokens
are tagged ``lang:word`` (``text.tagged``), so that a vocabulary built from the training
split (``language`` ``MULTILINGUAL``) holds a word vector per language and word ("en:in" and
"de:in" are different words). The parts must agree on every shared photo's split (all of
Flickr8K's are Flickr8K's own lists); a disagreement is a ``DataError``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tagged
from scenetalk.errors import DataError


def merge_languages(parts: Mapping[str, CaptionDataset], name: str = "multilingual") -> CaptionDataset:
    """The parts (language code -> dataset of that language) as one dataset (see the module)."""
    if len(parts) < 2:
        raise ValueError("merge_languages needs two languages or more (one language needs no tags)")
    images: dict[str, ImageRecord] = {}
    sentence_id = 0
    problems: list[str] = []
    for language, part in parts.items():
        for image in part.images:
            merged = images.get(image.relpath)
            if merged is None:
                merged = images[image.relpath] = ImageRecord(image.file_name, image.split, len(images), [],
                                                             image.subdir)
            elif merged.split != image.split:
                raise DataError(part.sources[0] if part.sources else part.name,
                                f"{image.relpath} is in split {image.split!r} here but {merged.split!r} in an "
                                "earlier language's files", record=image.relpath)
            for s in image.sentences:
                if s.language != language:
                    raise DataError(part.name, f"a {s.language!r} sentence in the {language!r} part",
                                    record=image.relpath)
                merged.sentences.append(Sentence(s.raw, tagged(language, s.tokens), language, sentence_id))
                sentence_id += 1
        problems.extend(f"{language}: {p}" for p in part.problems)
    zh = parts.get("zh")
    return CaptionDataset(name=name, images=list(images.values()),
                          sources=[src for part in parts.values() for src in part.sources], problems=problems,
                          zh_mode=zh.zh_mode if zh is not None else None)


def only_language(dataset: CaptionDataset, language: str) -> CaptionDataset:
    """The photos of ``dataset`` that have sentences in ``language``, with those sentences only
    (to score a model of several languages one language at a time)."""
    return only_languages(dataset, [language])


def only_languages(dataset: CaptionDataset, languages: Collection[str]) -> CaptionDataset:
    """The photos of ``dataset`` that have sentences in any of ``languages``, with those only."""
    images = [ImageRecord(im.file_name, im.split, im.image_id, [s for s in im.sentences if s.language in languages],
                          im.subdir) for im in dataset.images]
    kept = [im for im in images if im.sentences]
    if not kept:
        raise DataError(dataset.name, f"has no {' or '.join(map(repr, languages))} sentences (it has "
                        f"{', '.join(sorted({s.language for s in dataset.sentences()}))})")
    return CaptionDataset(f"{dataset.name} ({', '.join(languages)})", kept, dataset.image_dir, dataset.sources,
                          dataset.problems, dataset.zh_mode)
