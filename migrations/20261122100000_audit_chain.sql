-- Tamper evidence for the audit log: every row carries the hash of its content and of the
-- row before it (see src/audit_chain.rs). Rows written before this migration have no hash
-- and are reported as unchained by `hsq-config audit verify`.

ALTER TABLE configuration_audit_logs
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea;

-- The chain head: one row, locked FOR UPDATE by every audit insert, so concurrent writers
-- append one after another and ids follow chain order.
CREATE TABLE audit_chain_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id    bigint,
    last_hash  bytea NOT NULL
);
INSERT INTO audit_chain_head (singleton, last_id, last_hash)
VALUES (true, NULL, decode(repeat('00', 32), 'hex'));

-- Written by retention: the hash of the last row it deleted, so the remaining chain still
-- verifies from its first row.
CREATE TABLE audit_chain_checkpoints (
    id                 bigserial PRIMARY KEY,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deleted_through_id bigint NOT NULL,
    last_deleted_hash  bytea NOT NULL,
    deleted_rows       bigint NOT NULL
);
