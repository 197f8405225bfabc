"""Learning new words from a few photos with sentences: Mao et al.'s "Learning like a Child"
(NVCL, ICCV 2015, arXiv 1504.06692, §4), on a trained m-RNN.

NVCL's devices, each a line below:

* **Transposed weight sharing** (§4.1, ``models/mrnn.py`` [TWS]): the softmax layer reuses the
  transposed word-embedding matrix E_I, so a new word is *one new row of E_I* (its input and
  output vector at once) plus one bias. An m-RNN with its own softmax layer W_o
  (``output: full``, the shipped captioner) can be extended too: its new word also gets a row
  of W_o (NVCL's ablation without weight sharing).
* **Fixing the originally learned weights** (§4.2): every old parameter is frozen; only the
  new words' rows are learned (``method="nvcl"``). Their gradients on the old rows are zeroed,
  so Adam leaves them bit-identical (no weight decay), and on old captions the old words'
  logits are exactly the base model's.
* **Baseline probability fixation** (§4.2): the new words' softmax biases are set to the mean
  of the old biases and not trained, so a word learned from sentences that all contain it
  cannot raise its prior probability and swamp the old words.

``method="finetune"`` instead trains every parameter on the sentences given (issue #14's
baselines: on the new photos only, which forgets, or on new + base photos). Both run through
the one training loop (``training.loop.Trainer``) and give a normal checkpoint
(``caption --checkpoint``, ``scenetalk.load(captioner=...)``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scenetalk.captioning.detected_words import DETECTOR_WORDS, THRESHOLD, detector_words
from scenetalk.captioning.examples import build_examples
from scenetalk.checkpoint import checkpoint_id, load_generator, save_checkpoint
from scenetalk.data.schema import CaptionDataset
from scenetalk.data.text import Vocabulary, tokenize
from scenetalk.errors import ScenetalkError
from scenetalk.limits import MAX_WORDS
from scenetalk.models import build_generator, eval_mode
from scenetalk.models.fields import Bounds
from scenetalk.models.generator import CaptionGenerator
from scenetalk.models.mrnn import MRNN
from scenetalk.training.caption_trainer import perplexity
from scenetalk.training.loop import LoopConfig, Trainer
from scenetalk.training.losses import caption_cross_entropy

METHODS = ("nvcl", "finetune")
INITS = ("zero", "analogy")
#: how many known words a new word's rows average under ``init="analogy"`` (chosen on val,
#: BENCHMARKS.md "New words: zero-shot")
ANALOGUES = 3


@dataclass
class NewWordsConfig(LoopConfig):
    """How new words are learned. The defaults were chosen on Flickr8K's validation split
    (BENCHMARKS.md "New words")."""
    method: str = "nvcl"           # "nvcl": only the new words' rows; "finetune": every parameter
    steps: int = 300               # optimisation steps (batches drawn in turn from a shuffled list)
    optimizer: str = "adam"
    lr: float = 0.01
    batch_size: int = 50
    max_words: int = 20            # longer sentences are cut, as in training
    epochs: int = 1                # the loop's one "epoch" holds all the steps
    select_metric: str = "perplexity"
    init: str = "zero"             # new rows: "zero", or "analogy" (the mean of the nearest known words' rows)

    choices = {**LoopConfig.choices, "method": METHODS, "select_metric": ("perplexity",), "init": INITS}
    ranges = {**LoopConfig.ranges, "steps": Bounds(1, 1_000_000), "max_words": Bounds(1, MAX_WORDS)}


@dataclass
class LearnedWords:
    """A captioner that knows ``words``: its model, vocabulary and checkpoint metadata, and how
    it was learned. ``save(out)`` writes it as a normal checkpoint folder."""
    model: CaptionGenerator
    vocab: Vocabulary
    meta: dict
    words: list[str]
    photos: int
    sentences: int
    seconds: float
    uses: dict[str, int] = field(default_factory=dict)   # word -> sentences that use it

    def save(self, out: str | Path) -> Path:
        return save_checkpoint(out, self.model.state_dict(), self.meta)


def check_words(words: Sequence[str], vocab: Vocabulary, relearn: bool) -> list[str]:
    """The words to learn, each one token as the tokenizer makes it; refuses an empty list, a
    phrase, and (unless ``relearn``) a word the captioner knows."""
    if isinstance(words, str):
        words = [words]
    if not words:
        raise ScenetalkError("give at least one word to learn")
    checked: list[str] = []
    for word in words:
        tokens = tokenize(word, vocab.language, vocab.zh_mode or "jieba") if isinstance(word, str) else []
        if len(tokens) != 1:
            raise ScenetalkError(f"{word!r}: not one word; give each new word on its own (a phrase's words one by one)")
        token = tokens[0]
        if token != word.strip().lower():
            raise ScenetalkError(f"{word!r}: sentences would read it as {token!r}; give the word as the "
                                 "tokenizer writes it (letters and digits, no punctuation)")
        if token in vocab and not relearn:
            raise ScenetalkError(f"{token!r}: the captioner knows this word already; pass --relearn "
                                 "(relearn=True) to learn it again from these photos")
        if token not in checked:
            checked.append(token)
    return checked


def extend_generator(model: CaptionGenerator, model_config: dict, vocab: Vocabulary, words: list[str],
                     where: str, analogues: dict[str, list[str]] | None = None
                     ) -> tuple[CaptionGenerator, dict, Vocabulary, list[int]]:
    """A copy of ``model`` with rows for ``words``: new ones appended to the vocabulary, known
    ones (relearned) reset. Their embedding rows (and W_o rows) start at zero, or, for a word
    in ``analogues``, at the mean of its known analogues' rows (DCC's direct transfer, Hendricks
    et al. 2016: a new word starts as the words it resembles), and their biases at the mean of
    the old words' biases (baseline probability fixation). Returns the model, its config, the
    vocabulary and the ids of the rows to learn."""
    if not isinstance(model, MRNN):
        raise ScenetalkError(f"{where}: a {model_config.get('type')!r} captioner cannot learn new words; "
                             "new words need an m-RNN captioner (model type 'mrnn', like the shipped one)")
    added = [w for w in words if w not in vocab]
    new_vocab = Vocabulary(vocab.itos[len(Vocabulary.SPECIALS):] + added, vocab.counts, vocab.min_count,
                           vocab.language, vocab.zh_mode)
    new_vocab.forms = dict(vocab.forms)
    config = {**model_config, "vocab_size": len(new_vocab)}
    extended = build_generator(config)
    old_size = len(vocab)
    learned = sorted(new_vocab.stoi[w] for w in words)
    relearned = set(learned)
    baseline = model.output_bias().detach()[[i for i in range(old_size) if i not in relearned]].mean()
    old_state, state = model.state_dict(), {}
    for name, tensor in extended.state_dict().items():
        old = old_state[name]
        if tensor.shape != old.shape:            # the vocabulary-sized tensors: E_I, W_o / b_o
            tensor = torch.zeros_like(tensor)
            tensor[:old_size] = old
        else:
            tensor = old.clone()
        if tensor.shape[:1] == (len(new_vocab),):
            if tensor.dim() == 1:
                tensor[learned] = baseline        # baseline probability fixation (§4.2)
            else:
                tensor[learned] = 0.0
                for word, known in (analogues or {}).items():
                    tensor[new_vocab.stoi[word]] = old[[vocab.stoi[k] for k in known]].mean(0)
        state[name] = tensor
    extended.load_state_dict(state)
    return extended, config, new_vocab, learned


def find_analogues(words: Sequence[str], vocab: Vocabulary, k: int = ANALOGUES) -> dict[str, list[str]]:
    """For each word, the ``k`` known words of the vocabulary nearest it in pretrained word
    vectors (``data.word_vectors``), nearest first. Candidates are the vocabulary's words of
    letters only, the words themselves excepted."""
    from scenetalk.data.word_vectors import word_vectors

    vectors = word_vectors()
    out = {}
    for word in words:
        candidates = [w for w in vocab.itos[len(Vocabulary.SPECIALS):] if w.isalpha() and w != word]
        out[word] = [w for w, _ in vectors.nearest(word, candidates, k)]
    return out


def add_words_by_analogy(base: str | Path, words: Sequence[str], k: int = ANALOGUES,
                         threshold: float = THRESHOLD) -> LearnedWords:
    """Zero-shot: the captioner of ``base`` with rows for ``words`` it never saw, each the mean
    of its ``k`` nearest known words' rows (``find_analogues``), bias at the baseline. Nothing is
    trained; the captioner says such a word where the detector sees the thing (its checkpoint's
    ``detector_words``, ``captioning.detected_words``) and nowhere else."""
    started = time.time()
    model, vocab, base_meta = load_generator(base)
    words = check_words(words, vocab, relearn=False)
    analogues = find_analogues(words, vocab, k)
    model, model_config, vocab, _ = extend_generator(model, base_meta["model"], vocab, words, str(base), analogues)
    meta = {**{key: v for key, v in base_meta.items() if key not in ("model", "vocabulary", "learned_words")},
            "model": model_config, "vocabulary": vocab.to_dict(),
            "detector_words": {"words": words, "threshold": threshold},
            "learned_words": {"words": words, "method": "analogy", "analogues": analogues, "base": str(base),
                              "base_id": checkpoint_id(base), "photos": 0, "sentences": 0}}
    return LearnedWords(model.eval(), vocab, meta, words, 0, 0, time.time() - started)


def freeze_all_but_rows(model: CaptionGenerator, rows: list[int]) -> list:
    """Freeze every parameter except the vocabulary rows ``rows`` of the word matrices (E_I,
    and W_o when the model has one): their other rows get a zero gradient (§4.2). The biases,
    new words' included, stay fixed (baseline probability fixation). Returns the gradient
    hooks, for the caller to remove when learning is over."""
    vocab_size = model.output_bias().numel()
    keep = torch.zeros(vocab_size, 1)
    keep[rows] = 1.0
    hooks = []
    for name, param in model.named_parameters():
        trainable = name in ("E_I.weight", "W_o.weight")
        param.requires_grad_(trainable)
        if trainable:
            hooks.append(param.register_hook(lambda grad: grad * keep.to(grad.device)))
    return hooks


class NewWordsTrainer(Trainer):
    """The training loop over the learning sentences: ``steps`` batches drawn in turn from one
    shuffled list of them (repeated as often as needed), then one "validation": the perplexity
    of those sentences (there is no held-out data here; selection happens outside)."""

    def __init__(self, config: NewWordsConfig, model: CaptionGenerator, vocab: Vocabulary, meta: dict,
                 examples, features: torch.Tensor, extractor_id: str, out_dir: str | Path, progress: bool,
                 on_step: Callable[[int], None] | None = None):
        super().__init__(config, out_dir, progress, on_step)
        self.model, self.vocab, self._meta = model, vocab, meta
        self.examples, self.features, self.extractor_id = examples, features, extractor_id
        torch.manual_seed(config.seed)
        self.make_optimizer()

    @property
    def items_per_epoch(self) -> int:
        return self.config.steps * self.config.batch_size

    def batch_loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, dict]:
        idx = idx % len(self.examples.ids)
        ids = self.examples.ids[idx]
        length = int((ids != self.vocab.pad_id).sum(1).max())
        ids = ids[:, :length].to(self.device)
        logits = self.model(self.features[self.examples.image_rows[idx]].to(self.device), ids[:, : length - 1])
        loss, n = caption_cross_entropy(logits, ids[:, 1:length], self.vocab.pad_id)
        return loss, n, {}

    def evaluate(self) -> dict[str, float]:
        return {"perplexity": perplexity(self.model, self.features, self.examples, self.vocab.pad_id)}

    def checkpoint_meta(self) -> dict:
        return self._meta


def word_uses(dataset: CaptionDataset, words: list[str]) -> dict[str, int]:
    """word -> how many sentences of the dataset's train split use it."""
    return {w: sum(w in s.tokens for s in dataset.sentences("train")) for w in words}


def learn_words(base: str | Path, words: Sequence[str], dataset: CaptionDataset, features: torch.Tensor,
                row_of: dict[str, int], extractor_id: str, config: NewWordsConfig | None = None,
                relearn: bool = False, progress: bool = True, captions_name: str = "the captions") -> LearnedWords:
    """Teach the captioner of checkpoint ``base`` the ``words`` from the photos of ``dataset``'s
    train split (their ``features`` rows by ``row_of``, made by the extractor ``extractor_id``,
    the base's). Every word must be used by at least one sentence; a word the base knows is
    refused unless ``relearn``. Returns the new captioner (not yet saved)."""
    config = config or NewWordsConfig()
    started = time.time()
    model, vocab, base_meta = load_generator(base, expect_extractor_id=extractor_id)
    words = check_words(words, vocab, relearn)
    uses = word_uses(dataset, words)
    unused = [w for w in words if not uses[w]]
    if unused:
        raise ScenetalkError(f"{captions_name}: no sentence uses {unused[0]!r}; give photos whose sentences "
                             f"say the word{'s' if len(words) > 1 else ''} to learn")
    analogues = find_analogues([w for w in words if w not in vocab], vocab) if config.init == "analogy" else {}
    model, model_config, vocab, rows = extend_generator(model, base_meta["model"], vocab, words, str(base), analogues)
    hooks = freeze_all_but_rows(model, rows) if config.method == "nvcl" else []
    examples = build_examples(dataset, "train", vocab, row_of, config.max_words)
    meta = {"kind": "caption_generator", "model": model_config, "vocabulary": vocab.to_dict(),
            **{k: base_meta[k] for k in ("decoding",) if k in base_meta},
            "learned_words": {"words": words, "method": config.method, "init": config.init, "analogues": analogues,
                              "base": str(base),
                              "base_id": checkpoint_id(base), "photos": len(examples.references),
                              "sentences": len(examples.ids), "uses": uses}}
    with tempfile.TemporaryDirectory(prefix="scenetalk-learn-") as run:
        trainer = NewWordsTrainer(config, model, vocab, meta, examples, features.float(), extractor_id, run,
                                  progress)
        trainer.run()
    gated = [w for w in words if w in set(DETECTOR_WORDS.values())]
    if config.init == "analogy" and gated:   # zero-shot + NVCL: the detector still gates its classes' words
        meta["detector_words"] = {"words": gated, "threshold": THRESHOLD}
    meta["learned_words"]["seconds"] = round(time.time() - started, 2)
    with eval_mode(model):
        meta["learned_words"]["perplexity"] = round(trainer.evaluate()["perplexity"], 4)
    meta.update(extractor_id=extractor_id, train_config=trainer.meta()["train_config"])
    for hook in hooks:
        hook.remove()
    for param in model.parameters():
        param.requires_grad_(True)
    return LearnedWords(model.eval(), vocab, meta, words, len(examples.references), len(examples.ids),
                        time.time() - started, uses)


# -- from files: what `scenetalk learn-word` and `Scenetalk.learn_words` run ------------------

@dataclass
class LearnWordsResult:
    """A finished ``learn-word``: the new checkpoint and how it was learned."""
    out: str
    words: list[str]
    method: str
    photos: int
    sentences: int
    uses: dict[str, int]
    seconds: float
    perplexity: float | None     # of the learning sentences; None when no photo was given
    base: str
    analogues: dict[str, list[str]] = field(default_factory=dict)   # word -> the known words it started from


def photo_features(extractor, paths: list[str], batch_size: int = 16, progress: bool = True) -> torch.Tensor:
    """Global feature vectors (N, D) of image files, ``batch_size`` at a time, with a bar."""
    from scenetalk.progress import progress_bar
    from scenetalk.vision.images import load_image

    rows = []
    with progress_bar(total=len(paths), unit="photo", desc="features", disable=not progress) as bar:
        for start in range(0, len(paths), batch_size):
            batch = paths[start:start + batch_size]
            rows.append(torch.from_numpy(extractor.features([load_image(p) for p in batch])["global"]).float())
            bar.update(len(batch))
    return torch.cat(rows)


def learn_words_from_files(words: Sequence[str], images: str | Path | None, captions: str | Path | None,
                           out: str | Path, base: str | Path | None = None, method: str = "nvcl",
                           steps: int | None = None, relearn: bool = False, overwrite: bool = False,
                           progress: bool = True, from_detector: bool = False) -> LearnWordsResult:
    """Teach a captioner ``words`` from the photos in folder ``images`` and their sentences in
    ``captions`` (``data.captions_file``), and write the new captioner to ``out``. ``base``
    defaults to the shipped captioner. Everything that can be checked is checked before the
    photos are read (``out``, ``base``, the words, the captions, every photo's file).

    ``from_detector``: the words' rows start from their analogues in pretrained word vectors and
    the detector decides where its classes' words are said (``add_words_by_analogy``); with no
    photos (``images`` and ``captions`` None) nothing is trained (zero-shot), and ``words`` may
    be empty: every one-word detector class the base lacks."""
    import os

    from scenetalk import checks
    from scenetalk.data.captions_file import read_captions
    from scenetalk.features.extract import extractor_for
    from scenetalk.models.fields import FieldError
    from scenetalk.weights import shipped_reranker

    out = Path(checks.path("out (--out)", out))
    if (images is None) != (captions is None) or (images is None and not from_detector):
        raise ScenetalkError("give the photos (--images) and their sentences (--captions), or --from-detector "
                             "alone to add the detector's words without photos")
    if images is None:
        return _words_from_detector(words, out, checks.path("base (--base)", base, optional=True)
                                    or shipped_reranker(), overwrite)
    images = Path(checks.path("images (--images)", images))
    captions = Path(checks.path("captions (--captions)", captions))
    base = Path(checks.path("base (--base)", base, optional=True) or shipped_reranker())
    if out.exists() and not out.is_dir():
        raise ScenetalkError(f"{out}: is a file; --out names the checkpoint folder to write")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ScenetalkError(f"{out}: exists already; pass --overwrite (overwrite=True) to replace it")
    try:
        config = NewWordsConfig(method=method, init="analogy" if from_detector else "zero",
                                **({"steps": steps} if steps is not None else {}))
    except FieldError as exc:
        raise ScenetalkError(f"{'--' if exc.key else ''}{exc.key.replace('_', '-')} {exc.problem}") from None
    base_model, base_vocab, meta = load_generator(base)   # checks the whole checkpoint, one line if damaged
    if not images.is_dir():
        raise ScenetalkError(f"{images}: {'no such folder' if not images.exists() else 'not a folder'} (--images)")
    dataset = read_captions(captions)
    paths = [images / im.relpath for im in dataset.images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ScenetalkError(f"{missing[0]}: no such photo ({len(missing)} of the {len(paths)} photos named in "
                             f"{captions} are not in {images})")
    # refuse what learn_words would refuse before the backbone loads and the photos are read
    if not isinstance(base_model, MRNN):
        raise ScenetalkError(f"{base}: a {meta['model'].get('type')!r} captioner cannot learn new words; "
                             "new words need an m-RNN captioner (model type 'mrnn', like the shipped one)")
    checked = check_words(words, base_vocab, relearn)
    unused = [w for w, n in word_uses(dataset, checked).items() if not n]
    if unused:
        raise ScenetalkError(f"{captions}: no sentence uses {unused[0]!r}; give photos whose sentences say it")
    extractor = extractor_for(meta.get("extractor_id") or "", base, grid=False)
    features = photo_features(extractor, [os.fspath(p) for p in paths], progress=progress)
    learned = learn_words(base, words, dataset, features, {im.relpath: k for k, im in enumerate(dataset.images)},
                          extractor.extractor_id, config, relearn=relearn, progress=progress,
                          captions_name=str(captions))
    learned.save(out)
    info = learned.meta["learned_words"]
    return LearnWordsResult(str(out), learned.words, config.method, learned.photos, learned.sentences,
                            learned.uses, round(learned.seconds, 2), info["perplexity"], str(base),
                            info.get("analogues", {}))


def _words_from_detector(words: Sequence[str], out: Path, base: str | Path, overwrite: bool) -> LearnWordsResult:
    """``learn-word --from-detector`` without photos: ``add_words_by_analogy`` for the detector's
    class words (all the base lacks when ``words`` is empty), written to ``out``."""
    base = Path(base)
    if out.exists() and not out.is_dir():
        raise ScenetalkError(f"{out}: is a file; --out names the checkpoint folder to write")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ScenetalkError(f"{out}: exists already; pass --overwrite (overwrite=True) to replace it")
    model, vocab, meta = load_generator(base)
    if not isinstance(model, MRNN):
        raise ScenetalkError(f"{base}: a {meta['model'].get('type')!r} captioner cannot learn new words; "
                             "new words need an m-RNN captioner (model type 'mrnn', like the shipped one)")
    classes = set(DETECTOR_WORDS.values())
    if not words and not detector_words(vocab):
        raise ScenetalkError(f"{base}: the captioner knows every one-word detector class already")
    words = check_words(list(words) or detector_words(vocab), vocab, relearn=False)
    other = [w for w in words if w not in classes]
    if other:
        raise ScenetalkError(f"{other[0]!r}: not one of the detector's classes, so it cannot be added without "
                             "photos; give --images and --captions to learn it from photos")
    added = add_words_by_analogy(base, words)
    added.save(out)
    return LearnWordsResult(str(out), added.words, "analogy", 0, 0, {w: 0 for w in added.words},
                            round(added.seconds, 2), None, str(base), added.meta["learned_words"]["analogues"])
