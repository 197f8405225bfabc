"""scenetalk: describe, search and ground images with sentences.

    import scenetalk
    m = scenetalk.load()
    m.caption(["photo.jpg"], beam_size=7, n_best=3)
"""

__version__ = "0.1.0"


def load(checkpoint=None):
    """A ``Captioner`` from a checkpoint folder, by default the one shipped with the package
    (see ``scenetalk.api``). Imported lazily so that ``import scenetalk`` stays light."""
    from scenetalk.api import load as _load

    return _load(checkpoint)
