"""Sentences of a split as training or scoring examples for a caption generator: padded word
ids (<start> w.. <end>) with the feature-store row of each sentence's image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary
from scenetalk.errors import ScenetalkError


@dataclass
class CaptionExamples:
    """Sentences as padded id rows, each with the row of its image's features."""
    image_rows: torch.Tensor       # (M,)
    ids: torch.Tensor              # (M, L): <start> w_1 .. w_n <end> <pad>...
    references: dict[int, list[str]]  # image row -> reference sentences (tokens joined)


def build_examples(dataset: CaptionDataset, split: str, vocab: Vocabulary, row_of: dict[str, int],
                   max_words: int) -> CaptionExamples:
    rows, seqs, refs = [], [], {}
    for image in dataset.split(split):
        if image.relpath not in row_of:
            raise ScenetalkError(f"image {image.relpath} of split {split!r} has no cached features; "
                                 "run `scenetalk features` on this dataset first")
        row = row_of[image.relpath]
        refs[row] = [" ".join(s.tokens) for s in image.sentences]
        for s in image.sentences:
            rows.append(row)
            seqs.append(s.tokens[:max_words])
    if not seqs:
        raise ScenetalkError(f"dataset {dataset.name!r} has no sentences in split {split!r}")
    ids, _ = vocab.encode_batch(seqs)
    return CaptionExamples(torch.tensor(rows), torch.from_numpy(ids), refs)
