-- Where each Postgres sink stands in its target database: the last event it committed
-- here, written in the same transaction as the rows. pgfanout runs this itself (with
-- :"schema" filled in from the sink's `schema`) when the table is missing; a DBA may run
-- it by hand instead, so that the sink's role needs no CREATE right:
--   psql -v schema=public -f 001_sink_state.sql
CREATE TABLE IF NOT EXISTS :"schema".pgfanout_sink_state (
  sink_id    text PRIMARY KEY,
  commit_lsn pg_lsn NOT NULL,
  ordinal    bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
