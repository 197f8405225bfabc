"""scenetalk: describe, search and ground images with sentences.

    import scenetalk
    m = scenetalk.load()
    m.caption(["photo.jpg"], beam_size=7, n_best=3)
    m.search("my-index", "a dog runs on the beach", k=10)
"""

__version__ = "0.1.0"


def load(captioner=None, alignment=None):
    """scenetalk's models (see ``scenetalk.api.Scenetalk``): ``caption``, ``search`` and
    ``score``; by default the checkpoints shipped with the package. Imported lazily so that
    ``import scenetalk`` stays light."""
    from scenetalk.api import load as _load

    return _load(captioner, alignment)
