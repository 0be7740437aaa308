-- The least a pgfanout source role needs; run once as a superuser, e.g.
--   psql -v password="'...'" -v tables='public.users, public.teams' -f 001_replication_role.sql
-- REPLICATION lets it open a logical replication slot; LOGIN lets it connect; SELECT on the
-- tracked tables is what the snapshot copy needs. It needs no write privilege on the
-- primary: pgfanout adds no trigger and no column, and writes nothing there.
CREATE ROLE pgfanout WITH LOGIN REPLICATION PASSWORD :password;
GRANT SELECT ON :tables TO pgfanout;
