"""The web service and its page (``scenetalk serve``): every capability of the façade over HTTP.

``app.create_app(settings)`` gives the ASGI app; ``settings.ServiceSettings`` says what it
serves and the limits it holds every request to; ``errors`` the one error shape;
``scheduling`` the model pool, the queue and dynamic batching; ``uploads`` how an uploaded
photo is read; ``static/`` the web page (no build step, nothing from a CDN).
"""

__all__ = ["create_app", "ServiceSettings"]


def __getattr__(name: str):
    # imported on first use, so that `scenetalk --help` does not load FastAPI
    if name == "create_app":
        from scenetalk.service.app import create_app

        return create_app
    if name == "ServiceSettings":
        from scenetalk.service.settings import ServiceSettings

        return ServiceSettings
    raise AttributeError(f"module 'scenetalk.service' has no attribute {name!r}")
