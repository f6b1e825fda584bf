-- +goose Up
-- users.email holds the login identifier: an email, or after a release a
-- generated identifier (initials and digits) until the user chooses a new
-- login email.
ALTER TABLE users
    ADD COLUMN phone_number  text    NOT NULL DEFAULT '' CHECK (phone_number = '' OR phone_number ~ '^\+[1-9][0-9]{7,14}$'),
    ADD COLUMN login_pending boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE users DROP COLUMN phone_number, DROP COLUMN login_pending;
