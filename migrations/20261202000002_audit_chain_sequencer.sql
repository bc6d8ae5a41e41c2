-- Audit rows are appended without a lock and chained shortly after by a sequencer (see
-- src/domain/audit_chain.rs): `chain_seq` is a row's position in the chain, assigned when it is
-- chained. Rows chained until now were chained in id order, so their position is their id.

ALTER TABLE configuration_audit_logs ADD COLUMN chain_seq bigint;
UPDATE configuration_audit_logs SET chain_seq = id WHERE hash IS NOT NULL;
CREATE UNIQUE INDEX configuration_audit_logs_chain_seq_key
    ON configuration_audit_logs (chain_seq);
CREATE INDEX configuration_audit_logs_pending_idx
    ON configuration_audit_logs (id) WHERE hash IS NULL;

-- The head also names the position of the last chained row, and the newest row written before
-- the chain existed: rows up to it stay unchained; every later one is chained.
ALTER TABLE audit_chain_head
    ADD COLUMN last_seq bigint,
    ADD COLUMN legacy_through_id bigint NOT NULL DEFAULT 0;
UPDATE audit_chain_head SET last_seq = last_id,
    legacy_through_id = COALESCE((SELECT max(id) FROM configuration_audit_logs WHERE hash IS NULL), 0);

-- While replicas of the previous version run, they chain their own rows under the head lock;
-- give those rows their position here.
CREATE FUNCTION configuration_audit_logs_position() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_chain_head SET last_seq = COALESCE(last_seq, 0) + 1 WHERE singleton
        RETURNING last_seq INTO NEW.chain_seq;
    RETURN NEW;
END $$;

CREATE TRIGGER configuration_audit_logs_position
    BEFORE INSERT ON configuration_audit_logs
    FOR EACH ROW WHEN (NEW.hash IS NOT NULL AND NEW.chain_seq IS NULL)
    EXECUTE FUNCTION configuration_audit_logs_position();
