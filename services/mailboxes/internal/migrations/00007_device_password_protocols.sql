-- +goose Up
-- A device password opens IMAP, SMTP submission, or both. Dovecot passes the
-- service asking ('%s': imap, pop3, smtp, submission, ...) to dovecot_login,
-- which answers only for a password that opens it; any other service (a
-- ManageSieve client, say) gets nothing.
ALTER TABLE device_passwords
    ADD COLUMN imap boolean NOT NULL DEFAULT true,
    ADD COLUMN smtp boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT device_passwords_opens_something CHECK (imap OR smtp);

CREATE OR REPLACE VIEW dovecot_device_passwords AS
SELECT u.login, d.secret_sha256, d.id AS device_password_id, d.address_id, d.user_id, d.imap, d.smtp
FROM device_passwords d
JOIN dovecot_users u ON u.address_id = d.address_id
JOIN address_users au ON au.address_id = d.address_id AND au.user_id = d.user_id
WHERE d.revoke_time IS NULL
  AND (au.rights IS NULL OR COALESCE((au.rights ->> 'devices')::boolean, false));

-- +goose StatementBegin
CREATE FUNCTION dovecot_login(p_login text, p_password text, p_service text) RETURNS TABLE (login text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
    WITH hit AS (
        SELECT v.device_password_id, v.login
        FROM dovecot_device_passwords v
        WHERE v.login = lower(p_login)
          AND v.secret_sha256 = encode(sha256(convert_to(lower(translate(p_password, '- ', '')), 'UTF8')), 'hex')
          AND CASE lower(p_service)
                WHEN 'imap' THEN v.imap
                WHEN 'pop3' THEN v.imap
                WHEN 'smtp' THEN v.smtp
                WHEN 'submission' THEN v.smtp
                ELSE false
              END
        LIMIT 1
    ), touched AS (
        UPDATE device_passwords d SET last_use_time = now()
        FROM hit
        WHERE d.id = hit.device_password_id
          AND (d.last_use_time IS NULL OR d.last_use_time < now() - interval '1 minute')
        RETURNING d.id
    )
    SELECT hit.login FROM hit
$$;
-- +goose StatementEnd

-- The two-argument form stays for a Dovecot whose configuration predates
-- this migration (a rolling upgrade): it checks the password for any
-- protocol, as before. Drop it once every Dovecot passes '%s'.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dovecot_login(p_login text, p_password text) RETURNS TABLE (login text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
    SELECT login FROM dovecot_login(p_login, p_password, 'imap')
    UNION
    SELECT login FROM dovecot_login(p_login, p_password, 'smtp')
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION dovecot_login(text, text);
DROP FUNCTION dovecot_login(text, text, text);
-- +goose StatementBegin
CREATE FUNCTION dovecot_login(p_login text, p_password text) RETURNS TABLE (login text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
    WITH hit AS (
        SELECT v.device_password_id, v.login
        FROM dovecot_device_passwords v
        WHERE v.login = lower(p_login)
          AND v.secret_sha256 = encode(sha256(convert_to(lower(translate(p_password, '- ', '')), 'UTF8')), 'hex')
        LIMIT 1
    ), touched AS (
        UPDATE device_passwords d SET last_use_time = now()
        FROM hit
        WHERE d.id = hit.device_password_id
          AND (d.last_use_time IS NULL OR d.last_use_time < now() - interval '1 minute')
        RETURNING d.id
    )
    SELECT hit.login FROM hit
$$;
-- +goose StatementEnd
DROP VIEW dovecot_device_passwords;
CREATE VIEW dovecot_device_passwords AS
SELECT u.login, d.secret_sha256, d.id AS device_password_id, d.address_id, d.user_id
FROM device_passwords d
JOIN dovecot_users u ON u.address_id = d.address_id
JOIN address_users au ON au.address_id = d.address_id AND au.user_id = d.user_id
WHERE d.revoke_time IS NULL
  AND (au.rights IS NULL OR COALESCE((au.rights ->> 'devices')::boolean, false));
ALTER TABLE device_passwords DROP CONSTRAINT device_passwords_opens_something, DROP COLUMN imap, DROP COLUMN smtp;
