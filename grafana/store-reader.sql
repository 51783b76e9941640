-- A read-only role for Grafana's "Run store" datasource. The postgres image runs this once, when
-- it initialises an empty data directory (docker-compose.yml mounts it in
-- /docker-entrypoint-initdb.d). The exporter's migrations create the tables later, as the owner
-- role `agent`: default privileges grant SELECT on them as they appear.
\set reader_password `echo "$STORE_READER_PASSWORD"`
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE agent_exporter TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE agent IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
