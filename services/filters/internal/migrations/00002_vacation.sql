-- +goose Up
-- The auto-reply's script as mailboxes rendered it (empty: none), and the
-- stream sequence of the event it came from: an older event redelivered
-- after a newer one is skipped.
ALTER TABLE addresses
    ADD COLUMN vacation_sieve text NOT NULL DEFAULT '',
    ADD COLUMN vacation_seq bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE addresses DROP COLUMN vacation_sieve, DROP COLUMN vacation_seq;
