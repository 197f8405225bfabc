"""Image features on disk: the feature store (``scenetalk.features.store``) and extraction
into it (``scenetalk.features.extract``).

Reading a store needs only NumPy; extraction (torch, OpenCV) is imported on its own:
``from scenetalk.features.extract import extract``.
"""

from scenetalk.features.store import FeatureStore, FeatureStoreError

__all__ = ["FeatureStore", "FeatureStoreError"]
