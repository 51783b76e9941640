"""OpenTelemetry traces in: the OTLP/HTTP codec, the GenAI mapping, and the assembly of runs from
spans that arrive in several requests (`codec`, `mapping`, `assembly`)."""
