-- The sink registry (sink_registry.table in the config): each row is a sink made from a
-- template of the config's sink_templates. pgfanout creates it when it is missing, with
-- :"table" filled in from its config; a DBA may run it by hand instead:
--   psql -v table=pgfanout_sinks -f 004_sink_registry.sql
-- It is tracked through pgfanout's slot like the data tables, so a change to it takes
-- effect at its position among the rows it governs. Passwords never go here: the template's
-- password_file, a passfile or PGPASSWORD gives them.
CREATE TABLE IF NOT EXISTS :"table" (
  sink_id  text PRIMARY KEY,
  template text NOT NULL,
  tenants  text[] NOT NULL,
  params   jsonb NOT NULL DEFAULT '{}',
  enabled  boolean NOT NULL DEFAULT true
);
