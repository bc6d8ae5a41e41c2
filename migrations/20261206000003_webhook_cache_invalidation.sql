-- Replicas cache the list of enabled webhook endpoints and their subscriptions (so an event
-- type nobody subscribes to costs no transaction); a change to who receives what invalidates
-- it everywhere. Delivery bookkeeping (failure counts, last attempt) does not.

CREATE FUNCTION hsq_notify_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hsq_invalidate', 'webhooks');
    RETURN NULL;
END $$;

CREATE TRIGGER webhook_configurations_invalidate
    AFTER INSERT OR DELETE ON webhook_configurations FOR EACH STATEMENT
    EXECUTE FUNCTION hsq_notify_webhooks();
CREATE TRIGGER webhook_configurations_invalidate_update
    AFTER UPDATE ON webhook_configurations FOR EACH ROW
    WHEN (OLD.enabled IS DISTINCT FROM NEW.enabled OR OLD.events IS DISTINCT FROM NEW.events
          OR OLD.provider IS DISTINCT FROM NEW.provider)
    EXECUTE FUNCTION hsq_notify_webhooks();
