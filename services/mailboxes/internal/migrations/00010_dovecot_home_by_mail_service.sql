-- +goose Up
-- Dovecot keeps an address's mail in <mail root>/<mail service id>/<address
-- id> (deploy/mail/dovecot), so that `mailplane mailstore` removes a purged
-- mail service's mail as one directory. The new column comes last, so the
-- view is replaced in place and Dovecot's grant on it stays.
CREATE OR REPLACE VIEW dovecot_users AS
SELECT a.id AS address_id, a.local_key || '@' || m.domain AS login, a.quota_bytes, a.mail_service_id
FROM addresses a
JOIN mail_services m ON m.id = a.mail_service_id
WHERE m.delete_time IS NULL AND a.kind IN ('mailbox', 'no_reply');

-- +goose Down
-- A column cannot leave a view in place: the view, and the one built on it,
-- are made again as they were (give Dovecot's role its SELECT again).
DROP VIEW dovecot_device_passwords;
DROP VIEW dovecot_users;
CREATE VIEW dovecot_users AS
SELECT a.id AS address_id, a.local_key || '@' || m.domain AS login, a.quota_bytes
FROM addresses a
JOIN mail_services m ON m.id = a.mail_service_id
WHERE m.delete_time IS NULL AND a.kind IN ('mailbox', 'no_reply');
CREATE VIEW dovecot_device_passwords AS
SELECT u.login, d.secret_sha256, d.id AS device_password_id, d.address_id, d.user_id, d.imap, d.smtp
FROM device_passwords d
JOIN dovecot_users u ON u.address_id = d.address_id
JOIN address_users au ON au.address_id = d.address_id AND au.user_id = d.user_id
WHERE d.revoke_time IS NULL
  AND (au.rights IS NULL OR COALESCE((au.rights ->> 'devices')::boolean, false));
