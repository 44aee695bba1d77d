"""``python -m studio serve RUN_OR_BUNDLE``: a REST server for one trained classifier (a face, beside the CLI and the
web app): ``POST /v1/classify``, ``GET /v1/model``, ``GET /healthz``, and its own documentation at ``/docs``."""
