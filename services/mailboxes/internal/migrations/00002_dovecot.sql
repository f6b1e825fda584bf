-- +goose Up
-- What Dovecot reads (deploy/mail/dovecot): its database role gets SELECT
-- on these two views only, never on the tables, so the views are the whole
-- contract between the schema and the mail server. A login is the address in
-- lower case, local part @ ASCII (punycode) domain.

-- The addresses that can log in to IMAP: mailboxes and no-reply addresses
-- (which send, so they may keep a Sent folder) of mail services not deleted.
-- A mailbox's home is named by its id, so renames and odd local parts
-- ("a/b") never touch the file system layout.
CREATE VIEW dovecot_users AS
SELECT a.id AS address_id, a.local_key || '@' || m.domain AS login, a.quota_bytes
FROM addresses a
JOIN mail_services m ON m.id = a.mail_service_id
WHERE m.delete_time IS NULL AND a.kind IN ('mailbox', 'no_reply');

-- Device passwords that work: not revoked, on an address above, whose owner
-- is still a user of the address with the "devices" right (rights NULL: all
-- rights). Removing a user or their right stops their devices at once, even
-- before anything revokes the passwords. secret_sha256 is unique, so a query
-- by login and hash returns at most one row (Dovecot refuses several).
CREATE VIEW dovecot_device_passwords AS
SELECT u.login, d.secret_sha256, d.id AS device_password_id, d.address_id, d.user_id
FROM device_passwords d
JOIN dovecot_users u ON u.address_id = d.address_id
JOIN address_users au ON au.address_id = d.address_id AND au.user_id = d.user_id
WHERE d.revoke_time IS NULL
  AND (au.rights IS NULL OR COALESCE((au.rights ->> 'devices')::boolean, false));

-- +goose Down
DROP VIEW dovecot_device_passwords;
DROP VIEW dovecot_users;
