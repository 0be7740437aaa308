-- The publication pgfanout reads (pgoutput's publication_names). pgfanout runs this itself
-- when the publication is missing, with :"publication" and :tables filled in from its
-- config; a DBA may run it by hand with psql as the tables' owner instead:
--   psql -v publication=pgfanout -v tables='public.users, public.teams' -f 002_create_publication.sql
-- publish_via_partition_root: a partitioned table's changes arrive under the root's name
-- and columns, as pgfanout tracks them (it changes nothing for plain tables).
CREATE PUBLICATION :"publication" FOR TABLE :tables WITH (publish_via_partition_root = true);
