-- Which event log wrote each sink's position: the source cluster's system identifier, the
-- slot, the timeline and the id of pgfanout's event log (its state dir). A sink resumes from
-- the position stored here only when its own event log wrote it; a position from another
-- state dir, slot or cluster is not comparable, and the sink then copies its tenants' rows
-- again instead (README: "Positions and their lineage"). pgfanout runs this itself, in a
-- transaction holding an advisory lock so that sinks starting together take turns; a DBA
-- may run it by hand instead:
--   psql -v schema=public -f 002_sink_state_lineage.sql
ALTER TABLE :"schema".pgfanout_sink_state
  ADD COLUMN IF NOT EXISTS source_system_id text,
  ADD COLUMN IF NOT EXISTS slot_name text,
  ADD COLUMN IF NOT EXISTS timeline bigint,
  ADD COLUMN IF NOT EXISTS log_id text;
