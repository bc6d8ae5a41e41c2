-- oauth.expiring is announced once per refresh-token expiry: the expiry it was announced for is
-- kept, so a rolled-forward expiry (a refresh extends it) can be announced again when it, too,
-- comes within OAUTH_EXPIRY_WARNING_DAYS.
ALTER TABLE oauth_tokens ADD COLUMN expiry_warned_for timestamptz;
