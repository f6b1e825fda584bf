-- +goose Up
-- An address whose scripts Dovecot refused to compile is not retried:
-- that is a bug of the compiler (customer input is checked before it is
-- stored), which a retry cannot fix. failed_time and failure record when
-- and why; the sweep skips the row, and the address's next change clears
-- them and tries again.
ALTER TABLE pending_installs
    ADD COLUMN failed_time timestamptz,
    ADD COLUMN failure text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE pending_installs DROP COLUMN failed_time, DROP COLUMN failure;
