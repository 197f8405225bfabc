"""Evaluating a checkpoint on a dataset split: caption metrics of a generator (or of the
nearest-neighbour baseline), or retrieval metrics of an alignment model (or of a generator's
likelihoods, as m-RNN ranks).

    import scenetalk
    result = scenetalk.evaluate("runs/x/best", features="features/flickr8k", split="val")
    result.scores["CIDEr-D"]

Choose models and settings on ``val``; ``test`` is for reporting a chosen model once (nothing
here tunes on it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from scenetalk.checks import finite_number, shown, whole_number
from scenetalk.errors import ScenetalkError
from scenetalk.limits import MAX_BEAM, MAX_CAPTION_WORDS


@dataclass
class CaptionEvaluation:
    """Caption metrics of one caption per image of a split (``scenetalk evaluate``'s report)."""
    split: str
    images: int
    scores: dict                   # BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE (0..1, coco-caption)
    in_training_set: float         # share of captions that are verbatim training sentences
    vocabulary_used: int           # distinct words over all captions
    mean_length: float             # words per caption
    perplexity: float | None       # the generator's per-word perplexity of the split's references
    what: str                      # the model (or baseline) and its decoding settings
    dataset: str
    seconds: float
    examples: dict[str, str] = field(default_factory=dict)  # the first ten captions, by image
    char_scores: dict | None = None  # Chinese: the same scores on characters (character-level BLEU)
    captions: dict[str, str] = field(default_factory=dict, metadata={"json": False})  # every caption


@dataclass
class RetrievalEvaluation:
    """Image -> text and text -> image retrieval on a split: R@1/5/10, median and mean rank
    (in %, and ranks from 1), every image against every sentence (or the mean over folds)."""
    what: str
    dataset: str
    split: str
    images: int
    sentences: int
    folds: int
    scoring_seconds: float
    image_to_text: dict
    text_to_image: dict
    method: str = "alignment"      # or "generative" (m-RNN: the generator's likelihoods)
    prior_images: int | None = None  # generative: training images the sentence prior averages over


def evaluate(checkpoint: str | os.PathLike | None = None, features: str | os.PathLike | None = None,
             dataset: str = "flickr8k", root: str | os.PathLike | None = None, split: str = "test",
             nearest_neighbour: bool = False, retrieval: bool = False, beam_size: int = 7, max_len: int = 20,
             length_penalty: float | None = None, meteor: bool = True, precision: str = "fp32", folds: int = 1,
             progress: bool = True, lang: str | None = None, human: bool = False
             ) -> CaptionEvaluation | RetrievalEvaluation:
    """Metrics of ``checkpoint`` on ``split`` of ``dataset``, from the feature store ``features``:
    caption metrics for a generator (or, with ``nearest_neighbour`` and no checkpoint, of the
    nearest-neighbour baseline); retrieval metrics for an alignment checkpoint, or for a
    generator with ``retrieval``. ``folds`` > 1 gives the mean over that many blocks of the
    split's images (5 = the COCO 1K protocol); ``precision="bf16"`` scores alignment pairs in
    bfloat16 (faster, approximate). ``lang``: only the dataset's sentences in that language (and
    the photos that have some), for a dataset of several (``flickr8k-multi``). ``human``: score
    each human reference against the others instead (``human_agreement``; no features needed).
    ``length_penalty``: by default the checkpoint's (``decoding.length_penalty``, chosen on
    validation when it was shipped), else 0, as ``caption`` decodes."""
    from scenetalk.checkpoint import read_meta
    from scenetalk.data.registry import load_dataset
    from scenetalk.features.store import FeatureStore

    if bool(checkpoint) + bool(nearest_neighbour) + bool(human) != 1:
        raise ScenetalkError("give one of a CHECKPOINT, --nearest-neighbour or --human-agreement")
    if not features and not human:
        raise ScenetalkError("--features: give the feature store of the dataset's images")
    if precision not in ("fp32", "bf16"):
        raise ScenetalkError(f"--precision must be fp32 or bf16, not {precision!r}")
    if split not in ("train", "val", "test"):
        raise ScenetalkError(f"split (--split) must be train, val or test, not {shown(split)}")
    beam_size = whole_number("beam_size (--beam)", beam_size, 1, MAX_BEAM)
    max_len = whole_number("max_len (--max-len)", max_len, 1, MAX_CAPTION_WORDS)
    if length_penalty is not None:
        length_penalty = finite_number("length_penalty (--length-penalty)", length_penalty)
    folds = whole_number("folds (--folds)", folds, 1, 1000)
    data = load_dataset(dataset, root=root, zh_mode=_zh_mode(checkpoint))
    if lang is not None:
        from scenetalk.data.multilingual import only_language

        data = only_language(data, lang)
        dataset = f"{dataset} ({lang})"
    if human:
        return human_evaluation(data, dataset, split, meteor)
    store = FeatureStore.open(features)
    if checkpoint and read_meta(checkpoint).get("kind") == "alignment":
        return alignment_retrieval(checkpoint, data, dataset, store, split, precision, folds)
    if retrieval:
        if not checkpoint:
            raise ScenetalkError("--retrieval needs a CHECKPOINT")
        return generative_retrieval(checkpoint, data, dataset, store, split, folds, progress)
    return caption_evaluation(checkpoint, data, dataset, store, split, beam_size, max_len, length_penalty,
                              meteor)


def _zh_mode(checkpoint) -> str | None:
    """How the checkpoint's vocabulary cuts Chinese (its perplexity needs the same tokens)."""
    from scenetalk.checkpoint import read_meta

    if not checkpoint:
        return None
    vocabulary = read_meta(checkpoint).get("vocabulary")
    return vocabulary.get("zh_mode") if isinstance(vocabulary, dict) else None


def human_evaluation(data, dataset: str, split: str, meteor: bool) -> CaptionEvaluation:
    """Human agreement as a caption evaluation: each reference against the others."""
    from scenetalk.captioning.evaluation import dataset_language, human_agreement

    started = time.time()
    images = [im for im in data.split(split) if len(im.sentences) >= 2]
    char = human_agreement(data, split, unit="char") if dataset_language(data) == "zh" else None
    shared = min((len(im.sentences) for im in images), default=0)
    return CaptionEvaluation(split=split, images=len(images), scores=human_agreement(data, split, meteor=meteor),
                             char_scores=char, in_training_set=0.0, vocabulary_used=0, mean_length=0.0,
                             perplexity=None, dataset=dataset, seconds=round(time.time() - started, 1),
                             what=f"human agreement (each of {shared} references against the other "
                                  f"{shared - 1}, mean over the {shared})")


def caption_evaluation(checkpoint, data, dataset: str, store, split: str, beam_size: int, max_len: int,
                       length_penalty: float | None, meteor: bool) -> CaptionEvaluation:
    """The generator's beam-search captions (or the nearest-neighbour baseline's) scored
    against every reference, with the generator's perplexity of the references."""
    from scenetalk.captioning.captioner import check_features, default_length_penalty
    from scenetalk.captioning.evaluation import caption_report, generated_captions, nearest_neighbour_captions
    from scenetalk.captioning.examples import build_examples
    from scenetalk.checkpoint import load_generator
    from scenetalk.training.caption_trainer import perplexity

    row_of = store.row_index
    started = time.time()
    if not checkpoint:
        captions = nearest_neighbour_captions(data, split, store.model_input("global"), row_of)
        what, ppl = "nearest-neighbour baseline (L2 on global CNN features)", None
    else:
        model, vocab, meta = load_generator(checkpoint)
        check_features(checkpoint, meta, store, model.image_input)   # a region store holds the global features too
        feats = store.model_input(model.image_input)
        if length_penalty is None:
            length_penalty = default_length_penalty(meta)
        captions = generated_captions(model, vocab, data, split, feats, row_of, beam_size=beam_size,
                                      max_len=max_len, length_penalty=length_penalty)
        ppl = perplexity(model, feats, build_examples(data, split, vocab, row_of, max_words=10_000), vocab.pad_id)
        what = f"{checkpoint} ({meta['model']['type']}), beam {beam_size}" + (
            f", length penalty {length_penalty:g}" if length_penalty else "")
    report = caption_report(captions, data, split, meteor=meteor)
    return CaptionEvaluation(**report, perplexity=ppl, what=what, dataset=dataset,
                             seconds=round(time.time() - started, 1), examples=dict(list(captions.items())[:10]),
                             captions=captions)


def retrieval_result(what: str, dataset: str, split: str, to_text, to_image, sentence_image, folds: int,
                     scoring_s: float, **extra) -> RetrievalEvaluation:
    """R@K and ranks from (images, sentences) scores, ``to_text`` ranking sentences for each
    image and ``to_image`` images for each sentence (the same matrix for the alignment model)."""
    from scenetalk.metrics.retrieval import coco_1k, retrieval_metrics

    def measure(scores):
        return coco_1k(scores, sentence_image, folds) if folds > 1 else retrieval_metrics(scores, sentence_image)

    text_metrics = measure(to_text)
    image_metrics = text_metrics if to_image is to_text else measure(to_image)
    n_images, n_sentences = to_text.shape
    return RetrievalEvaluation(what, dataset, split, n_images, n_sentences, folds, round(scoring_s, 2),
                               text_metrics["image_to_text"], image_metrics["text_to_image"], **extra)


def alignment_retrieval(checkpoint, data, dataset: str, store, split: str, precision: str,
                        folds: int) -> RetrievalEvaluation:
    """An alignment checkpoint: every image of the split against every sentence of it (eq. 8)."""
    import torch

    from scenetalk.checkpoint import load_alignment
    from scenetalk.retrieval.scoring import score_split, sentence_set

    model, vocab, _ = load_alignment(checkpoint, expect_extractor_id=store.extractor_id)
    sentences = sentence_set(data, split, vocab, store.row_index, max_words=10_000)
    started = time.time()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    scores = score_split(model, store.model_input("regions"), sentences, dtype=dtype)
    scoring_s = time.time() - started
    what = f"{checkpoint} (alignment, S_kl eq. {8 if model.config.score == 'max' else 7})"
    return retrieval_result(what, dataset, split, scores, scores, sentences.image_of, folds, scoring_s)


def generative_retrieval(checkpoint, data, dataset: str, store, split: str, folds: int,
                         progress: bool) -> RetrievalEvaluation:
    """m-RNN's ranking with a caption generator: images by log P(s | I), sentences by their
    perplexity given the image relative to a prior averaged over 100 training images."""
    from scenetalk.captioning.captioner import check_features
    from scenetalk.checkpoint import load_generator
    from scenetalk.retrieval.generative_ranking import rank_split

    model, vocab, meta = load_generator(checkpoint)
    check_features(checkpoint, meta, store, model.image_input)
    started = time.time()
    ranking = rank_split(model, vocab, data, split, store.model_input(model.image_input), store.row_index,
                         progress=progress)
    scoring_s = time.time() - started
    what = f"{checkpoint} ({meta['model']['type']}), generative ranking"
    return retrieval_result(what, dataset, split, ranking.to_text, ranking.to_image, ranking.sentence_image, folds,
                            scoring_s, method="generative", prior_images=ranking.prior_images)
