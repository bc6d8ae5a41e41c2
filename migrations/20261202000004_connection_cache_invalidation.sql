-- Replicas also cache OAuth connection rows (the token endpoint's read); refreshes,
-- reconnects, disconnects, restores and key rotation invalidate them everywhere.

CREATE FUNCTION hsq_notify_connection() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record := COALESCE(NEW, OLD);
BEGIN
    PERFORM pg_notify('hsq_invalidate', 'connection:' || r.provider || '/' || r.environment);
    RETURN NULL;
END $$;

CREATE TRIGGER oauth_tokens_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON oauth_tokens FOR EACH ROW
    EXECUTE FUNCTION hsq_notify_connection();
