-- +goose Up
-- The copy of mailboxes' addresses is kept by services/platform/mirror,
-- with the columns it writes in every service that keeps one: each user's
-- rights by name, learned from the address's next event (imports lets any
-- user of an address import into it, whatever their rights).
ALTER TABLE address_users ADD COLUMN rights text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE address_users DROP COLUMN rights;
