-- Replicas cache active API tokens and masked configs in memory; these triggers tell every
-- replica, through NOTIFY in the writing transaction, which entry a committed change makes
-- stale (see src/store/invalidation.rs).

CREATE FUNCTION hsq_notify_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record := COALESCE(NEW, OLD);
BEGIN
    IF TG_TABLE_NAME = 'api_tokens' THEN
        PERFORM pg_notify('hsq_invalidate', 'api_token:' || encode(r.token_hash, 'hex'));
    ELSE
        PERFORM pg_notify('hsq_invalidate', 'config:' || r.provider || '/' || r.environment);
    END IF;
    RETURN NULL;
END $$;

-- A token's use is recorded once a minute; only what changes who it is or whether it works
-- invalidates.
CREATE TRIGGER api_tokens_invalidate_update
    AFTER UPDATE ON api_tokens FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.role IS DISTINCT FROM NEW.role
          OR OLD.name IS DISTINCT FROM NEW.name OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION hsq_notify_invalidate();
CREATE TRIGGER api_tokens_invalidate_delete
    AFTER DELETE ON api_tokens FOR EACH ROW EXECUTE FUNCTION hsq_notify_invalidate();

CREATE TRIGGER integration_configs_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON integration_configs FOR EACH ROW
    EXECUTE FUNCTION hsq_notify_invalidate();
