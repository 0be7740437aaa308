-- Adds tables named in the config that the publication does not cover yet. pgfanout runs
-- this itself at start-up; by hand:
--   psql -v publication=pgfanout -v tables='public.new_table' -f 003_add_to_publication.sql
ALTER PUBLICATION :"publication" ADD TABLE :tables;
