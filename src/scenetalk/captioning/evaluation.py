"""Caption evaluation as the papers report it, plus the nearest-neighbour baseline.

Scores come from the official coco-caption code (``metrics.captions``) against every human
reference of each image. Beside them: the share of generated captions that occur verbatim
in the training set (Karpathy & Fei-Fei found 60% at beam 7 and 25% at beam 1 for their
model) and the number of distinct words used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from scenetalk.captioning.examples import CaptionExamples
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary, tokenize
from scenetalk.metrics.captions import score_captions
from scenetalk.models.generator import CaptionGenerator
from scenetalk.training.losses import caption_cross_entropy


def caption_report(captions: Mapping[str, str], dataset: CaptionDataset, split: str,
                   meteor: bool = True) -> dict:
    """Scores of one caption per image (keyed by image relpath) against the split's references."""
    images = {im.relpath: im for im in dataset.split(split)}
    missing = set(images) - set(captions)
    if missing:
        raise ValueError(f"no caption for {len(missing)} {split} images, e.g. {sorted(missing)[0]}")
    refs = {name: [s.raw for s in images[name].sentences] for name in images}
    scores = score_captions({n: captions[n] for n in images}, refs, meteor=meteor)
    language = next((s.language for im in images.values() for s in im.sentences), "en")
    training = {" ".join(s.tokens) for s in dataset.sentences("train")}
    generated = [" ".join(tokenize(captions[n], language)) for n in images]
    return {
        "split": split,
        "images": len(images),
        "scores": scores,
        "in_training_set": sum(g in training for g in generated) / len(generated),
        "vocabulary_used": len({w for g in generated for w in g.split()}),
        "mean_length": float(np.mean([len(g.split()) for g in generated])),
    }


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







@torch.no_grad()
def perplexity(model: CaptionGenerator, features: torch.Tensor, examples: CaptionExamples, pad_id: int,
               batch_size: int = 250) -> float:
    """Per-word perplexity of the examples' sentences (<end> included), as the papers report it."""
    was_training = model.training
    model.eval()
    total, words = 0.0, 0
    for chunk in torch.arange(len(examples.ids)).split(batch_size):
        ids = examples.ids[chunk]
        length = int((ids != pad_id).sum(1).max())
        logits = model(features[examples.image_rows[chunk]], ids[:, : length - 1])
        loss, n = caption_cross_entropy(logits, ids[:, 1:length], pad_id)
        total += float(loss) * n
        words += n
    model.train(was_training)
    return math.exp(total / max(words, 1))


@torch.no_grad()
def evaluate_generator(model: CaptionGenerator, features: torch.Tensor, examples: CaptionExamples,
                       vocab: Vocabulary, max_images: int | None = None, batch_size: int = 250) -> dict[str, float]:
    """Validation perplexity (all sentences), and CIDEr-D and BLEU-4 of greedy captions (our
    tokens, no PTB step: selection needs a fast, consistent score; reported numbers use the
    full protocol)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    from scenetalk.captioning.captioner import caption_features

    was_training = model.training
    model.eval()
    rows = sorted(examples.references)[:max_images]
    caps = caption_features(model, vocab, features[torch.tensor(rows)], beam_size=1, batch_size=batch_size)
    captions = {r: c[0].text or "<empty>" for r, c in zip(rows, caps)}
    refs, hyps = {r: examples.references[r] for r in rows}, {r: [captions[r]] for r in rows}
    cider, _ = Cider().compute_score(refs, hyps)
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    model.train(was_training)
    return {"perplexity": perplexity(model, features, examples, vocab.pad_id, batch_size), "cider": float(cider),
            "bleu4": float(bleu[3])}
