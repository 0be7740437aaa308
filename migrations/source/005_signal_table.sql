-- The signal table (source.signal_table in the config): an INSERT asks the running
-- pgfanout to copy a sink's rows again (like pgfanout resnapshot), for operators who can
-- only reach the database. pgfanout creates it when it is missing, with :"table" filled
-- in from its config; a DBA may run it by hand instead:
--   psql -v table=pgfanout_signals -f 005_signal_table.sql
-- It is tracked through pgfanout's slot, so requests are taken in commit order and
-- survive a restart. UPDATE and DELETE are ignored. Grant INSERT narrowly: whoever may
-- insert may make pgfanout copy (read the source, write the sinks) at will.
CREATE TABLE IF NOT EXISTS :"table" (
  id           bigserial PRIMARY KEY,
  sink_id      text NOT NULL,
  table_name   text,                          -- schema.name; NULL: every table of the sink
  replace      boolean NOT NULL DEFAULT true, -- false: keep rows the copy does not find
  requested_at timestamptz NOT NULL DEFAULT now()
);
