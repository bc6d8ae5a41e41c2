-- oauth.expiring is announced once per refresh-token expiry: the expiry it was announced for is
-- kept, so a rolled-forward expiry (a refresh extends it) can be announced again when it, too,
-- comes within OAUTH_EXPIRY_WARNING_DAYS.
ALTER TABLE oauth_tokens ADD COLUMN expiry_warned_for timestamptz;

-- Intuit's hard maximum lifetime of a refresh token (five years since November 2025), when the
-- token response reports it (`x_refresh_token_hard_expires_in`); unlike the rolling expiry, a
-- refresh never extends it.
ALTER TABLE oauth_tokens ADD COLUMN refresh_hard_expires_at timestamptz;
