"""The HTTP service: `app.create_app` composes the routes (ingest, executions, read, ops), the error
shape, access control and the OpenAPI document around one `Service`."""
