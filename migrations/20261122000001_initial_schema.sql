-- The core schema: integration configs, webhooks, OAuth tokens, API tokens, the audit log and
-- the keyring check. Sealed values are bytea (see src/crypto.rs); masked copies are plain.

CREATE TABLE integration_configs (
    id                     uuid PRIMARY KEY,
    provider               text NOT NULL CHECK (provider IN ('hubspot', 'stripe', 'quickbooks')),
    environment            text NOT NULL CHECK (environment IN ('sandbox', 'production')),
    enabled                boolean NOT NULL DEFAULT true,
    settings               jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets                bytea NOT NULL,
    secrets_masked         jsonb NOT NULL DEFAULT '{}'::jsonb,
    key_id                 text NOT NULL,
    version                bigint NOT NULL DEFAULT 1,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    created_by             text,
    updated_by             text,
    last_validated_at      timestamptz,
    last_validation_status text,
    last_validation_detail text,
    CONSTRAINT integration_configs_provider_environment_key UNIQUE (provider, environment)
);
CREATE INDEX integration_configs_key_id_idx ON integration_configs (key_id);

CREATE TABLE oauth_tokens (
    id                 uuid PRIMARY KEY,
    integration_id     uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    provider           text NOT NULL CHECK (provider IN ('hubspot', 'stripe', 'quickbooks')),
    environment        text NOT NULL CHECK (environment IN ('sandbox', 'production')),
    access_token       bytea NOT NULL,
    refresh_token      bytea,
    key_id             text NOT NULL,
    token_type         text NOT NULL DEFAULT 'bearer',
    expires_at         timestamptz,
    refresh_expires_at timestamptz,
    scope              text,
    realm_id           text,
    hub_id             text,
    stripe_user_id     text,
    status             text NOT NULL DEFAULT 'connected'
                       CHECK (status IN ('connected', 'needs_reauth', 'revoked')),
    version            bigint NOT NULL DEFAULT 1,
    last_refreshed_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oauth_tokens_provider_environment_key UNIQUE (provider, environment)
);
CREATE INDEX oauth_tokens_integration_id_idx ON oauth_tokens (integration_id);
CREATE INDEX oauth_tokens_expires_at_idx ON oauth_tokens (expires_at) WHERE status = 'connected';
CREATE INDEX oauth_tokens_key_id_idx ON oauth_tokens (key_id);

CREATE TABLE webhook_configurations (
    id            uuid PRIMARY KEY,
    provider      text CHECK (provider IN ('hubspot', 'stripe', 'quickbooks')),
    url           text NOT NULL,
    events        text[] NOT NULL DEFAULT '{}',
    secret        bytea,
    secret_masked text,
    key_id        text,
    enabled       boolean NOT NULL DEFAULT true,
    description   text,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,
    updated_by    text
);
CREATE INDEX webhook_configurations_key_id_idx ON webhook_configurations (key_id);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'viewer', 'service')),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_tokens_name_active_key ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE configuration_audit_logs (
    id             bigserial PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_token_id uuid,
    actor_name     text NOT NULL,
    actor_ip       text,
    request_id     text,
    user_agent     text,
    action         text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text,
    provider       text,
    environment    text,
    success        boolean NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX configuration_audit_logs_time_idx
    ON configuration_audit_logs (occurred_at DESC, id DESC);
CREATE INDEX configuration_audit_logs_provider_idx
    ON configuration_audit_logs (provider, environment, occurred_at DESC);
CREATE INDEX configuration_audit_logs_action_idx
    ON configuration_audit_logs (action, occurred_at DESC);
CREATE INDEX configuration_audit_logs_actor_idx
    ON configuration_audit_logs (actor_name, occurred_at DESC);
CREATE INDEX configuration_audit_logs_resource_idx
    ON configuration_audit_logs (resource_id, occurred_at DESC);

CREATE TABLE keyring_check (
    key_id     text PRIMARY KEY,
    canary     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
