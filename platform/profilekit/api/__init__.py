"""The HTTP API (FastAPI), versioned under /v1. `create_app` builds it from settings."""
