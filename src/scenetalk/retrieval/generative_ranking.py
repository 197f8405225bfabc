"""Retrieval with a caption generator, as m-RNN does it (Mao et al. 2015, §6).

Every (image, sentence) pair is scored by the generator's log-likelihood of the sentence
given the image, log P(s | I), <end> included:

* image retrieval (text -> image): for a sentence, rank the images by log P(s | I);
* sentence retrieval (image -> text): for an image, rank the sentences by their perplexity
  given the image relative to their perplexity under an image-averaged prior,
  (log P(s | I) - log P(s)) / n_words with P(s) = mean over images I' of P(s | I'), so that
  short, generic sentences that every image likes do not win. The prior averages over a
  seeded sample of *training* images, never the test images.

The likelihoods are teacher-forced passes of every sentence under every image, in chunks,
with the matrix products in bfloat16 by default (the softmax over the vocabulary for every
word of every pair dominates; ``precision="fp32"`` for exact float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scenetalk.data.text import Vocabulary
from scenetalk.models import eval_mode
from scenetalk.models.generator import CaptionGenerator
from scenetalk.progress import progress_bar


@torch.no_grad()
def sentence_log_likelihoods(model: CaptionGenerator, images: torch.Tensor, ids: torch.Tensor, pad_id: int = 0,
                             sentences_per_pass: int = 1000, precision: str = "bf16",
                             progress: bool = False) -> torch.Tensor:
    """log P(s_l | I_k) for every image (N, ...) and sentence (L, T: <start> w.. <end> <pad>..),
    as an (N, L) float32 matrix.

    A model whose recurrent layer never sees the image (the m-RNN: it has ``text_term``) gets
    the image-free part of every sentence computed once, so each image costs only the
    multimodal and softmax layers; any other generator is run in full for every image."""
    with eval_mode(model):
        inputs, targets = ids[:, :-1], ids[:, 1:]
        mask = targets != pad_id
        blocks = [slice(s, s + sentences_per_pass) for s in range(0, len(ids), sentences_per_pass)]
        lengths = [int(mask[b].sum(1).max()) for b in blocks]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        text_terms = None
        if hasattr(model, "text_term"):
            with autocast:
                text_terms = [model.text_term(inputs[b, :n]) for b, n in zip(blocks, lengths)]
        out = torch.empty(len(images), len(ids))
        bar = progress_bar(total=len(images), unit="image", disable=not progress)
        for k in range(len(images)):
            for i, (block, length) in enumerate(zip(blocks, lengths)):
                with autocast:
                    if text_terms is not None:
                        logits = model.multimodal_logits(text_terms[i], images[k:k + 1])
                    else:
                        image = images[k:k + 1].expand(len(inputs[block]), *images.shape[1:])
                        logits = model(image, inputs[block, :length])
                # log softmax at the target only: the target's logit minus the log-sum-exp over the vocabulary
                lp = (logits.gather(2, targets[block, :length, None]).squeeze(2).float()
                      - torch.logsumexp(logits.float(), dim=-1))
                out[k, block] = (lp * mask[block, :length]).sum(dim=1)
            bar.update(1)
        bar.close()
        return out


def prior_image_rows(dataset, row_index: dict[str, int], count: int = 100, seed: int = 0) -> torch.Tensor:
    """Feature-store rows of the ``count`` images the prior averages over: a seeded sample of
    the *training* split (never the images being ranked)."""
    train = dataset.split("train")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.tensor([row_index[train[int(i)].relpath] for i in order])


def log_prior(prior_likelihoods: torch.Tensor) -> torch.Tensor:
    """log P(s) = log mean_I' P(s | I') from an (N', L) matrix of log-likelihoods."""
    return torch.logsumexp(prior_likelihoods, dim=0) - math.log(prior_likelihoods.size(0))


def generative_scores(likelihoods: torch.Tensor, prior: torch.Tensor, n_words: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(image -> text scores, text -> image scores), both (N, L): the normalised log-perplexity
    ratio for ranking sentences, the plain log-likelihood for ranking images."""
    sentence_scores = (likelihoods - prior[None, :]) / n_words.clamp(min=1)[None, :].float()
    return sentence_scores, likelihoods


@torch.no_grad()
def pair_log_likelihoods(model: CaptionGenerator, images: torch.Tensor, ids: torch.Tensor, pairs: torch.Tensor,
                         pad_id: int = 0, precision: str = "bf16", pairs_per_pass: int = 256,
                         progress: bool = False) -> torch.Tensor:
    """log P(s_l | I_k) for the (P, 2) pairs (k, l) only, as ``sentence_log_likelihoods`` gives
    them for all: for re-ranking a few candidates per query. The model must have ``text_term``
    (the m-RNN family): the image-free part of every sentence is computed once, then the
    multimodal and softmax layers of ``pairs_per_pass`` pairs at a time, shortest sentences
    first (so a pass pads little)."""
    with eval_mode(model):
        inputs, targets = ids[:, :-1], ids[:, 1:]
        mask = targets != pad_id
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        with autocast:
            text = torch.cat([model.text_term(inputs[i:i + 500]).float() for i in range(0, len(ids), 500)])
        out = torch.empty(len(pairs))
        order = mask[pairs[:, 1]].sum(1).argsort()
        for start in progress_bar(range(0, len(pairs), pairs_per_pass), unit="pass", desc="likelihoods",
                                  disable=not progress):
            rows = order[start:start + pairs_per_pass]
            k, sents = pairs[rows, 0], pairs[rows, 1]
            n = int(mask[sents].sum(1).max())
            with autocast:
                logits = model.multimodal_logits(text[sents, :n], images[k])
            lp = logits.gather(2, targets[sents, :n, None]).squeeze(2).float() - torch.logsumexp(logits.float(), -1)
            out[rows] = (lp * mask[sents, :n]).sum(1)
        return out


@dataclass
class SplitRanking:
    """Generative scores of every (image, sentence) pair of a split."""
    to_text: torch.Tensor          # (N, L) for ranking the sentences of each image
    to_image: torch.Tensor         # (N, L) for ranking the images of each sentence
    sentence_image: torch.Tensor   # (L,) index of each sentence's image among the split's
    prior_images: int              # training images the prior P(s) averages over


def rank_split(model: CaptionGenerator, vocab: Vocabulary, dataset, split: str, features: torch.Tensor,
               row_index: dict[str, int], prior_count: int = 100, progress: bool = False) -> SplitRanking:
    """m-RNN's retrieval scores of every image of ``split`` against every sentence of it, the
    prior from ``prior_count`` training images (``prior_image_rows``)."""
    from scenetalk.captioning.examples import build_examples

    images = dataset.split(split)
    examples = build_examples(dataset, split, vocab, row_index, max_words=10_000)
    image_rows = torch.tensor([row_index[im.relpath] for im in images])
    position = {int(r): k for k, r in enumerate(image_rows)}
    sentence_image = torch.tensor([position[int(r)] for r in examples.image_rows])
    prior_rows = prior_image_rows(dataset, row_index, count=prior_count)
    lik = sentence_log_likelihoods(model, features[image_rows], examples.ids, vocab.pad_id, progress=progress)
    prior = log_prior(sentence_log_likelihoods(model, features[prior_rows], examples.ids, vocab.pad_id))
    to_text, to_image = generative_scores(lik, prior, (examples.ids[:, 1:] != vocab.pad_id).sum(1))
    return SplitRanking(to_text, to_image, sentence_image, len(prior_rows))
