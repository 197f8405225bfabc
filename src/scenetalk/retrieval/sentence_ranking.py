"""Ranking sentences for a photo with a captioner as well (``Searcher.describe``): the best K
sentences by S_kl (eq. 8) are ordered again by

    S_kl + λ · (log P(s | I) − log P(s)) / n_words

m-RNN's sentence score (Mao et al. §6): the captioner's log-likelihood of the sentence given
the photo against the sentence prior log P(s) = log mean_I' P(s | I') over the captioner's
prior images (100 of its training photos, ``checkpoint.read_prior_images``), per word
(<end> included), so that short generic sentences every photo likes do not win. K and λ were
chosen on Flickr8K val with the shipped models (``benchmarks/rerank_fusion.py``, image → text:
K 100, λ 5; BENCHMARKS.md "Re-ranking"). The prior of an index's sentences is computed once,
when the index is built (``retrieval.index.write_index``); of sentences given to ``describe``,
for its K candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scenetalk.captioning.likelihood import sentence_log_priors, step_log_likelihoods
from scenetalk.data.text import Vocabulary, detect_language

#: how many of the best sentences by S_kl are ordered again, and λ (see the module)
DESCRIBE_RERANK_TOP = 100
DESCRIBE_RERANK_WEIGHT = 5.0

#: what a description's scores mean, in the user's words (``Description.scores``)
SENTENCE_MATCH_MEANING = ("match score, how well the sentence's words fit the photo's regions (each word on the "
                          "region it fits best, summed; higher is better); not re-ranked")
SENTENCE_RERANKED_MEANING = ("match score + {weight:g} × the captioner's log-likelihood of the sentence given the "
                             "photo against its likelihood for an average photo, per word; higher is better; "
                             "re-ranked: the best {top} sentences by match score ordered again by it")


def sentence_languages(texts: Sequence[str], vocab: Vocabulary) -> list[str]:
    """The language each sentence is read in by an alignment model of ``vocab``'s languages."""
    languages = vocab.languages
    if len(languages) == 1:
        return [languages[0]] * len(texts)
    return [detect_language(t, languages) for t in texts]


def captioner_ids(vocab: Vocabulary, texts: Sequence[str]) -> np.ndarray:
    """The sentences as a captioner reads them: (L, T) ids, <start> words <end>, 0-padded."""
    ids, _ = vocab.encode_batch([vocab.tokenize(t) for t in texts])
    return ids


def log_priors(steps, vocab: Vocabulary, prior_images: np.ndarray, texts: Sequence[str],
               progress: bool = False) -> np.ndarray:
    """log P(s) of each sentence under the captioner (``sentence_log_priors``), (L,) float32."""
    return sentence_log_priors(steps, prior_images, captioner_ids(vocab, texts), vocab.pad_id, progress=progress)


def log_ratios(steps, vocab: Vocabulary, image: np.ndarray, texts: Sequence[str], priors: np.ndarray) -> np.ndarray:
    """(log P(s | I) − log P(s)) / n_words of each sentence for one photo's global features (D,)."""
    ids = captioner_ids(vocab, texts)
    images = np.repeat(np.asarray(image, dtype=np.float32)[None], len(ids), axis=0)
    log_p = step_log_likelihoods(steps, images, ids, vocab.pad_id)
    words = np.maximum((ids[:, 1:] != vocab.pad_id).sum(axis=1), 1)
    return ((log_p - np.asarray(priors, dtype=np.float32)) / words).astype(np.float32)
