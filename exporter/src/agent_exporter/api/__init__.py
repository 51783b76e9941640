"""The HTTP app: ingest, read, operations and the web pages."""
