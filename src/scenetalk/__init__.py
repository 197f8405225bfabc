"""scenetalk: describe, search and ground images with sentences.

    import scenetalk
    m = scenetalk.load()
    m.caption(["photo.jpg"], beam_size=7, n_best=3)
    m.search("my-index", "a dog runs on the beach", k=10)
"""

__version__ = "0.1.0"


def load(captioner=None, alignment=None, lang="en"):
    """scenetalk's models (see ``scenetalk.api.Scenetalk``): ``caption``, ``search`` and
    ``score``; by default the checkpoints shipped with the package, the captioner of ``lang``
    (``en``, ``zh``, ``de``). Imported lazily so that ``import scenetalk`` stays light."""
    from scenetalk.api import load as _load

    return _load(captioner, alignment, lang)


def train(config, **kwargs):
    """Train what a config says and return its ``TrainResult`` (out, steps, best_val, ...);
    see ``scenetalk.training.config.train``. ``config`` is a YAML file, a shipped config's
    name or a dict with the same keys; ``features=``, ``out=``, ``root=`` override it,
    ``resume=True`` continues the run in ``out``, ``progress=False`` hides the progress bar.

        result = scenetalk.train("mrnn_lstm_flickr8k", features="features/flickr8k", out="runs/x")
    """
    from scenetalk import runtime

    runtime.need_torch("scenetalk.train")
    from scenetalk.training.config import train as _train

    return _train(config, **kwargs)


def evaluate(checkpoint=None, **kwargs):
    """Metrics of a checkpoint on a dataset split: a ``CaptionEvaluation`` for a caption
    generator (or the nearest-neighbour baseline, ``nearest_neighbour=True``), a
    ``RetrievalEvaluation`` for an alignment model (or a generator with ``retrieval=True``);
    see ``scenetalk.training.evaluation.evaluate`` for the settings. ``features=`` (the
    dataset's feature store) is required.

        result = scenetalk.evaluate("runs/x/best", features="features/flickr8k", split="val")
        result.scores["CIDEr-D"]
    """
    from scenetalk import runtime

    runtime.need_torch("scenetalk.evaluate")
    from scenetalk.training.evaluation import evaluate as _evaluate

    return _evaluate(checkpoint, **kwargs)


def learn_words(words, images, captions, out, **kwargs):
    """Teach a captioner (``base=``, default the shipped one) new words from a folder of photos
    and a file of their sentences, and write the new captioner to ``out``; returns a
    ``LearnWordsResult``. See ``scenetalk.training.new_words.learn_words_from_files``.

        scenetalk.learn_words(["skateboard"], "photos/", "captions.tsv", "my-captioner")
        scenetalk.load(captioner="my-captioner").caption(["new.jpg"])
    """
    from scenetalk.api import load as _load

    return _load().learn_words(words, images, captions, out, **kwargs)


def export(checkpoint, out=None, **kwargs):
    """Export a trained checkpoint (caption generator or alignment model) as ONNX graphs, so it
    runs in the light install without PyTorch; returns an ``ExportResult``. Needs PyTorch (the
    ``train`` extra). See ``scenetalk.training.export.export_checkpoint``.

        scenetalk.export("runs/x/best")                   # the graphs go beside the weights
        scenetalk.load(captioner="runs/x/best").caption(["photo.jpg"])   # now runs in ONNX Runtime
    """
    from scenetalk import runtime

    runtime.need_torch("scenetalk export")
    from scenetalk.training.export import export_checkpoint

    return export_checkpoint(checkpoint, out, **kwargs)


def export_backbone(name="efficientnet-lite0", sizes=None, out=None):
    """Export a backbone's feature map as ONNX graphs at each input size (default: the size it
    was trained at), into ``out`` (default: the package's own ``weights/backbones``, which
    ships them); see ``scenetalk.training.export.export_backbone_graphs``. Needs PyTorch."""
    from scenetalk import runtime

    runtime.need_torch("exporting a backbone")
    from scenetalk.training.export import export_backbone_graphs

    return export_backbone_graphs(name, sizes, out)


def index_folder(folder, out, **kwargs):
    """Make a folder of photos searchable with sentences (``scenetalk index build``): returns an
    ``IndexSummary``. ``checkpoint=``, ``recursive=``, ``sentence_file=``, ``faiss_codes=``
    ("SQfp16" or "PQm"), ``ray=`` (True: a local Ray cluster, or an address) and the rest: see
    ``scenetalk.retrieval.index.index_folder``.

        scenetalk.index_folder("photos/", "photos.index")
        scenetalk.load().search("photos.index", "a dog runs on the beach")
    """
    from scenetalk.retrieval.index import index_folder as _index_folder

    return _index_folder(folder, out, **kwargs)


def add_to_index(index, folder=None, **kwargs):
    """Add the photos that appeared in an index's folder (or in ``folder``, inside it) as a new
    part of the index, without rebuilding it (``scenetalk index add``): returns an
    ``AddSummary`` (added, already, photos, part, skipped). See
    ``scenetalk.retrieval.index.add_to_index``."""
    from scenetalk.retrieval.index import add_to_index as _add_to_index

    return _add_to_index(index, folder, **kwargs)


def attach_index(index, other, folder=None, progress=True):
    """Make ``other``, an index built on another machine or of another folder with the same
    alignment model, a part of ``index`` (``scenetalk index attach``): copied in, its photos'
    names rebased on ``index``'s folder (``folder``: where ``other``'s photos are as this machine
    sees them). Returns an ``AttachSummary``. See ``scenetalk.retrieval.index.attach_index``."""
    from scenetalk.retrieval.index import attach_index as _attach_index

    return _attach_index(index, other, folder, progress=progress)


def extract_features(dataset, out, **kwargs):
    """Extract image features into a store (``scenetalk features``): ``dataset`` is a dataset
    name or file, or "folder" with ``images_dir=``; ``regions=``, ``ray=`` (True: a local Ray
    cluster, or an address) and the rest: see ``scenetalk.features.jobs.extract_images``.
    Returns an ``ExtractResult``."""
    from scenetalk.features.jobs import extract_images

    return extract_images(dataset, out, **kwargs)
