"""Caption evaluation as the papers report it, plus the nearest-neighbour baseline.

Scores come from the official coco-caption code (``metrics.captions``) against every human
reference of each image. Beside them: the share of generated captions that occur verbatim
in the training set (Karpathy & Fei-Fei found 60% at beam 7 and 25% at beam 1 for their
model) and the number of distinct words used.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary, tokenize
from scenetalk.metrics.captions import score_captions
from scenetalk.models.generator import CaptionGenerator


def caption_report(captions: Mapping[str, str], dataset: CaptionDataset, split: str,
                   meteor: bool = True) -> dict:
    """Scores of one caption per image (keyed by image relpath) against the split's references,
    in the references' language (``metrics.captions.score_captions``); Chinese also at the
    character level (``char_scores``: BLEU on characters)."""
    images = {im.relpath: im for im in dataset.split(split)}
    missing = set(images) - set(captions)
    if missing:
        raise ValueError(f"no caption for {len(missing)} {split} images, e.g. {sorted(missing)[0]}")
    refs = {name: [s.raw for s in images[name].sentences] for name in images}
    language = dataset_language(dataset)
    candidates = {n: captions[n] for n in images}
    scores = score_captions(candidates, refs, meteor=meteor, language=language, tokenize=scoring_tokens(language))
    char_scores = (score_captions(candidates, refs, meteor=False, language=language,
                                  tokenize=scoring_tokens(language, "char")) if language == "zh" else None)
    zh_mode = dataset.zh_mode or "jieba"
    training = {" ".join(s.tokens) for s in dataset.sentences("train")}
    generated = [" ".join(tokenize(captions[n], language, zh_mode)) for n in images]
    return {
        "split": split,
        "images": len(images),
        "scores": scores,
        "char_scores": char_scores,
        "in_training_set": sum(g in training for g in generated) / len(generated),
        "vocabulary_used": len({w for g in generated for w in g.split()}),
        "mean_length": float(np.mean([len(g.split()) for g in generated])),
    }


def scoring_tokens(language: str, unit: str = "word"):
    """How texts of ``language`` are cut for the scorers: None (coco-caption's PTB tokenizer)
    for English; scenetalk's tokens otherwise, Chinese in jieba words (Li et al. 2016's
    protocol) or, ``unit="char"``, in characters, whatever the model's own segmentation."""
    if language == "en":
        return None
    zh_mode = "char" if unit == "char" else "jieba"
    return lambda text: tokenize(text, language, zh_mode)


def dataset_language(dataset: CaptionDataset) -> str:
    """The language of a dataset's sentences (English when it has none)."""
    return next((s.language for im in dataset.images for s in im.sentences), "en")


def human_agreement(dataset: CaptionDataset, split: str, meteor: bool = True, unit: str = "word") -> dict:
    """How well people agree with each other, on the metrics' scale: each image's reference k
    scored against its other references, for every k that all images of the split have (5 on
    Flickr8K), and the scores averaged over k. A model's row beside it reads as "this close to
    a person" (it is scored against one more reference, so slightly favoured)."""
    images = [im for im in dataset.split(split) if len(im.sentences) >= 2]
    if not images:
        raise ValueError(f"no {split} image has two or more references")
    shared = min(len(im.sentences) for im in images)
    language = dataset_language(dataset)
    runs = []
    for k in range(shared):
        candidates = {im.relpath: im.sentences[k].raw for im in images}
        others = {im.relpath: [s.raw for j, s in enumerate(im.sentences) if j != k] for im in images}
        runs.append(score_captions(candidates, others, meteor=meteor and unit == "word", spice=False,
                                   language=language, tokenize=scoring_tokens(language, unit)))
    return {m: (float(np.mean([r[m] for r in runs])) if isinstance(runs[0][m], float) else runs[0][m])
            for m in runs[0]}


def nearest_neighbour_captions(dataset: CaptionDataset, split: str, features: torch.Tensor,
                               row_of: Mapping[str, int], batch_size: int = 500) -> dict[str, str]:
    """Karpathy & Fei-Fei's retrieval baseline (§4.2): give each image the sentence of the
    training image closest in L2 distance of CNN features (the first of its sentences)."""
    train = dataset.split("train")
    train_feats = features[[row_of[im.relpath] for im in train]].float()
    out = {}
    targets = dataset.split(split)
    for start in range(0, len(targets), batch_size):
        chunk = targets[start:start + batch_size]
        query = features[[row_of[im.relpath] for im in chunk]].float()
        nearest = torch.cdist(query, train_feats).argmin(dim=1)
        for im, j in zip(chunk, nearest.tolist()):
            out[im.relpath] = train[j].sentences[0].raw
    return out


def generated_captions(model: CaptionGenerator, vocab: Vocabulary, dataset: CaptionDataset, split: str,
                       features: torch.Tensor, row_of: Mapping[str, int], beam_size: int = 7, max_len: int = 20,
                       length_penalty: float = 0.0, required=None, forbidden=None) -> dict[str, str]:
    """The generator's best caption (beam search, ``beam_size`` 1 = greedy) for every image of
    the split, keyed by image relpath; ``required``/``forbidden``: per image of the split, in
    its order, as ``caption_features`` takes them."""
    from scenetalk.captioning.captioner import caption_features

    images = dataset.split(split)
    rows = torch.tensor([row_of[im.relpath] for im in images])
    caps = caption_features(model, vocab, features[rows], beam_size=beam_size, max_len=max_len,
                            length_penalty=length_penalty, required=required, forbidden=forbidden)
    return {im.relpath: c[0].text for im, c in zip(images, caps)}
