"""The monitoring mixin: recording rules, alerts and Grafana dashboards, generated from one configuration.

`python -m agent_exporter.mixin generate` renders `alerts/config.yaml` into
`prometheus/recording_rules.yml`, `alerts/alert_rules.yml` and `grafana/dashboards/*.json`
(kubernetes-mixin style: thresholds as data, generated files committed, a test keeps them honest).
"""
