"""Operating the toolkit: request ids, JSON logs, ``/healthz``, ``/readyz`` and ``/metrics``."""
