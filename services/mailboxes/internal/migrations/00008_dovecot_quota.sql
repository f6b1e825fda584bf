-- +goose Up
-- Dovecot's quota_clone plugin writes each mailbox's usage here (through its
-- dict-sql map, deploy/mail/dovecot/mailplane-dict.conf.ext) whenever it
-- changes; addresses read usageBytes from it. Dovecot's role may read and
-- write this table, and nothing else that it writes.
CREATE TABLE dovecot_quota (
    login    text PRIMARY KEY,
    bytes    bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0
);

-- The column this replaces, which nothing wrote.
ALTER TABLE addresses DROP COLUMN usage_bytes;

-- +goose Down
ALTER TABLE addresses ADD COLUMN usage_bytes bigint NOT NULL DEFAULT 0;
DROP TABLE dovecot_quota;
