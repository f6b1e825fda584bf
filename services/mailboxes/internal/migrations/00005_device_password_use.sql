-- +goose Up
-- Dovecot's password query calls this function instead of reading the view:
-- it finds the device password the way the view does (at most one row) and
-- records when it was used, at most once a minute so that a busy phone does
-- not write on every login. SECURITY DEFINER: Dovecot's role gets EXECUTE on
-- it and SELECT on dovecot_users, and no right on the tables.
-- +goose StatementBegin
CREATE FUNCTION dovecot_login(p_login text, p_password text) RETURNS TABLE (login text)
LANGUAGE sql VOLATILE SECURITY DEFINER
-- The schema it was made in, whatever the caller's search_path (and safe for
-- SECURITY DEFINER).
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

-- +goose Down
DROP FUNCTION dovecot_login(text, text);
