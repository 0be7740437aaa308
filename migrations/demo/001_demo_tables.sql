-- Demo tables for docker-compose.yml: two tenants' users and contact channels.
CREATE TABLE users (id serial PRIMARY KEY, tenant_id text NOT NULL, email text, name text);
CREATE TABLE contact_channels (id serial PRIMARY KEY, tenant_id text NOT NULL,
                               user_id int, kind text, value text);
INSERT INTO users (tenant_id, email, name) VALUES ('acme', 'ann@acme.test', 'Ann'),
                                                  ('globex', 'gus@globex.test', 'Gus');
-- Rows may move between tenants; per-tenant sinks learn the old tenant from the old row.
ALTER TABLE users REPLICA IDENTITY FULL;
ALTER TABLE contact_channels REPLICA IDENTITY FULL;
-- Tenant acme's own database is the tenant-acme service (docker-compose.yml).
