-- Event webhooks that deliver: an outbox of events written in the transaction of the change
-- that caused them, and one delivery row per endpoint × event that the delivery worker claims
-- with FOR UPDATE SKIP LOCKED (docs/webhooks.md).

-- Secret rotation keeps the previous secret signing for WEBHOOK_SECRET_OVERLAP; an endpoint
-- that delivery disabled (only failures for WEBHOOK_DISABLE_AFTER) says when and why.
ALTER TABLE webhook_configurations
    ADD COLUMN previous_secret            bytea,
    ADD COLUMN previous_secret_key_id     text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN disabled_at                timestamptz,
    ADD COLUMN disabled_reason            text;

-- Delivery's own bookkeeping per endpoint, kept apart from the configuration row, which only
-- configuration changes write (backups, restores and their checks compare it).
CREATE TABLE webhook_endpoint_state (
    webhook_id    uuid PRIMARY KEY REFERENCES webhook_configurations (id) ON DELETE CASCADE,
    -- The first failure since the last success.
    failing_since timestamptz NOT NULL
);

CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,
    event_type  text NOT NULL,
    provider    text,
    environment text,
    -- The whole body receivers get: {"id","type","timestamp","data"}; never a secret.
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id                 uuid PRIMARY KEY,
    webhook_id         uuid NOT NULL REFERENCES webhook_configurations (id) ON DELETE CASCADE,
    event_id           uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt runs, when its claim lapses.
    next_attempt_at    timestamptz,
    last_attempt_at    timestamptz,
    last_status_code   integer,
    last_error         text,
    -- The receiver's answer, truncated to a few KiB.
    last_response_body text,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at       timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx
    ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Free-form event names written before the catalogue existed: map those with an obvious
-- catalogue name; the rest stay as written and the API reports them in `warnings`.
UPDATE webhook_configurations w
   SET events = ARRAY(
       SELECT CASE lower(e)
                  WHEN 'config.changed' THEN 'config.updated'
                  WHEN 'config_changed' THEN 'config.updated'
                  WHEN 'config_created' THEN 'config.created'
                  WHEN 'config_replaced' THEN 'config.updated'
                  WHEN 'config_patched' THEN 'config.updated'
                  WHEN 'config_updated' THEN 'config.updated'
                  WHEN 'config_deleted' THEN 'config.deleted'
                  WHEN 'config_validated' THEN 'config.validated'
                  WHEN 'token_retrieved' THEN 'oauth.token_retrieved'
                  WHEN 'config.created' THEN 'config.created'
                  WHEN 'config.updated' THEN 'config.updated'
                  WHEN 'config.deleted' THEN 'config.deleted'
                  WHEN 'config.*' THEN 'config.*'
                  WHEN 'oauth.*' THEN 'oauth.*'
                  ELSE e
              END
         FROM unnest(w.events) WITH ORDINALITY AS t (e, n)
        ORDER BY n);
