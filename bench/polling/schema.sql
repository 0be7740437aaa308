-- The polling design pgfanout replaces, rebuilt faithfully as a baseline for bench/polling.sh:
-- dirty-flag triggers, a sequencer that rewrites flagged rows to stamp sequence ids, a
-- tombstone table for deletes, and (bench/polling/driver.cc) a sync engine that polls each
-- tenant's rows past its last synced sequence id and upserts them into the tenant's
-- database with a sequence guard.
-- Run on the source database after `items` exists (same columns as pgfanout's bench).
ALTER TABLE items ADD COLUMN should_update_sequence_id boolean NOT NULL DEFAULT true,
                  ADD COLUMN sequence_id bigint;
CREATE SEQUENCE items_sequence;
-- The sequencer finds flagged rows by this partial index; the sync engine scans by tenant
-- and sequence id.
CREATE INDEX items_flagged ON items (tenant_id, id) WHERE should_update_sequence_id;
CREATE INDEX items_by_sequence ON items (tenant_id, sequence_id);

CREATE TABLE deleted_items (tenant_id text NOT NULL, id bigint NOT NULL,
                            should_update_sequence_id boolean NOT NULL DEFAULT true,
                            sequence_id bigint, PRIMARY KEY (tenant_id, id));
CREATE INDEX deleted_items_flagged ON deleted_items (tenant_id, id) WHERE should_update_sequence_id;
CREATE INDEX deleted_items_by_sequence ON deleted_items (tenant_id, sequence_id);

-- Every write by the application flags the row; the sequencer's own update (which sets
-- sequence_id) does not.
CREATE FUNCTION items_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.sequence_id IS NOT DISTINCT FROM OLD.sequence_id THEN
    NEW.should_update_sequence_id := true;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER items_flag BEFORE INSERT OR UPDATE ON items
  FOR EACH ROW EXECUTE FUNCTION items_flag();

CREATE FUNCTION items_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO deleted_items (tenant_id, id) VALUES (OLD.tenant_id, OLD.id)
    ON CONFLICT (tenant_id, id) DO UPDATE SET should_update_sequence_id = true;
  RETURN OLD;
END $$;
CREATE TRIGGER items_tombstone BEFORE DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION items_tombstone();
-- A key deleted and inserted again has a tombstone and a live row; the sync engine applies
-- both in sequence order, so the later one wins.
