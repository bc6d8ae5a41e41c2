-- One generic external-account column instead of one per provider, and provider names checked
-- against a table the service fills at start instead of CHECK constraints, so adding a
-- provider needs no migration.
--
-- Expand → migrate → contract: this migration adds `external_account_id`, copies the three
-- per-provider columns into it, and keeps both in step with a trigger while replicas of the
-- previous version still run (they read and write the old columns). A later migration drops
-- `realm_id`, `hub_id`, `stripe_user_id` and the trigger once no such replica is left.

ALTER TABLE oauth_tokens ADD COLUMN external_account_id text;
UPDATE oauth_tokens SET external_account_id = COALESCE(realm_id, hub_id, stripe_user_id);

CREATE FUNCTION oauth_tokens_sync_external_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.external_account_id IS DISTINCT FROM OLD.external_account_id THEN
        -- Written by this version: mirror into the column the previous version reads.
        NEW.realm_id := CASE WHEN NEW.provider = 'quickbooks' THEN NEW.external_account_id END;
        NEW.hub_id := CASE WHEN NEW.provider = 'hubspot' THEN NEW.external_account_id END;
        NEW.stripe_user_id := CASE WHEN NEW.provider = 'stripe' THEN NEW.external_account_id END;
    ELSIF TG_OP = 'INSERT' AND NEW.external_account_id IS NOT NULL THEN
        NEW.realm_id := CASE WHEN NEW.provider = 'quickbooks' THEN NEW.external_account_id END;
        NEW.hub_id := CASE WHEN NEW.provider = 'hubspot' THEN NEW.external_account_id END;
        NEW.stripe_user_id := CASE WHEN NEW.provider = 'stripe' THEN NEW.external_account_id END;
    ELSE
        -- Written by the previous version (old columns only): derive the generic one.
        NEW.external_account_id := COALESCE(NEW.realm_id, NEW.hub_id, NEW.stripe_user_id,
                                            NEW.external_account_id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER oauth_tokens_sync_external_account
    BEFORE INSERT OR UPDATE ON oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION oauth_tokens_sync_external_account();

-- Provider names: the service registers every provider it knows at start.
CREATE TABLE providers (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO providers (name) VALUES ('hubspot'), ('stripe'), ('quickbooks');

ALTER TABLE integration_configs DROP CONSTRAINT integration_configs_provider_check,
    ADD CONSTRAINT integration_configs_provider_fkey FOREIGN KEY (provider) REFERENCES providers (name);
ALTER TABLE oauth_tokens DROP CONSTRAINT oauth_tokens_provider_check,
    ADD CONSTRAINT oauth_tokens_provider_fkey FOREIGN KEY (provider) REFERENCES providers (name);
ALTER TABLE webhook_configurations DROP CONSTRAINT webhook_configurations_provider_check,
    ADD CONSTRAINT webhook_configurations_provider_fkey FOREIGN KEY (provider) REFERENCES providers (name);
