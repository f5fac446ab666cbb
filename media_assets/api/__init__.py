"""The HTTP API (the seed's model-service contracts, search and the catalogue) and the web
page, on FastAPI. Like `cli.py`, it sits above `lib/` and calls the same functions the
assets call."""
