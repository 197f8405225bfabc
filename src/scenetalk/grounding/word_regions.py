"""Grounding words in image regions with the alignment model (Karpathy & Fei-Fei §3.1.4).

Every word t of a sentence scores every region i of its image by v_iᵀ s_t (eq. 11's unary,
``word_region_scores``). The chain MRF (``models/mrf.py``, eq. 10-12) then assigns each word
a region, with a bonus β for neighbours on the same region (``align_sentences``); the runs of
words on one region are segments: the snippets of the corpus (``grounding.snippets``) and
the right panel of Figure 5. Phrase localisation on the same scores is
``grounding.localisation``.

The word vectors are computed by the BRNN over the whole sentence, so a phrase's words carry
their context ("red" in "a man in a red shirt" knows about the shirt).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scenetalk.data.text import Vocabulary
from scenetalk.models.alignment import AlignmentModel
from scenetalk.models.mrf import chain_alignment

#: The MRF's β for snippets, chosen on the Flickr8K dev images: the β whose snippets best match
#: the human phrases of Flickr30K Entities (``snippet_agreement`` F1 3.57 at 0.75, 3.46 at 0.5,
#: 3.12 at 1; ``python benchmarks/tune_grounding.py``).
DEFAULT_BETA = 0.75


@torch.no_grad()
def word_region_scores(model: AlignmentModel, vocab: Vocabulary, regions: torch.Tensor,
                       tokens: Sequence[Sequence[str]], image_of: Sequence[int], batch_size: int = 256
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """v_iᵀ s_t for every word of every sentence against every region of its own image.

    regions: (K, M, D) region features of K images; tokens: L sentences; image_of: (L,) the
    image (0..K-1) of each sentence. Returns unary (L, T, M) float32 and the (L, T) mask."""
    model.eval()
    ids, lengths = vocab.encode_batch([list(t) or ["<unk>"] for t in tokens], add_start=False, add_end=False)
    image_of = torch.as_tensor(image_of, dtype=torch.long)
    unary = torch.zeros(len(ids), ids.size(1), regions.size(1))
    # Each image's regions once (an image has several sentences), in batches.
    v_all = torch.cat([model.embed_regions(regions[a:a + batch_size]).float()
                       for a in range(0, len(regions), batch_size)])
    order = lengths.argsort()  # batches of similar length: the recurrence runs only as long as needed
    for start in range(0, len(ids), batch_size):
        rows = order[start:start + batch_size]
        n = int(lengths[rows].max())
        s, _ = model.embed_words(ids[rows, :n])
        unary[rows, :n] = torch.einsum("lth,lmh->ltm", s.float(), v_all[image_of[rows]])
    return unary, ids != 0


def align_sentences(unary: torch.Tensor, mask: torch.Tensor, beta: float, batch_size: int = 1024
                    ) -> torch.Tensor:
    """MRF assignments (L, T) of many sentences, in batches (eq. 10-12)."""
    out = torch.full(mask.shape, -1, dtype=torch.long)
    for start in range(0, len(unary), batch_size):
        rows = slice(start, start + batch_size)
        out[rows], _ = chain_alignment(unary[rows], beta, mask[rows])
    return out
