-- +goose Up
-- The copy of mailboxes' addresses is kept by services/platform/mirror,
-- with the columns it writes in every service that keeps one: the
-- address's email (in lower case; filled in by each address's next event,
-- filters reads login) and each user's rights by name. Only the filters
-- right was kept so far: the others are learned from the next event.
ALTER TABLE addresses ADD COLUMN email text NOT NULL DEFAULT '';
ALTER TABLE address_users ADD COLUMN rights text[] NOT NULL DEFAULT '{}';
UPDATE address_users SET rights = '{filters}' WHERE filters;
-- filters stays, generated from rights, so that a replica of the previous
-- version still reads it while a rolling upgrade runs (its writes fail
-- and the event goes to a new replica).
ALTER TABLE address_users DROP COLUMN filters;
ALTER TABLE address_users ADD COLUMN filters boolean NOT NULL GENERATED ALWAYS AS ('filters' = ANY (rights)) STORED;

-- +goose Down
ALTER TABLE address_users ADD COLUMN filters_kept boolean NOT NULL DEFAULT false;
UPDATE address_users SET filters_kept = filters;
ALTER TABLE address_users DROP COLUMN filters;
ALTER TABLE address_users RENAME COLUMN filters_kept TO filters;
ALTER TABLE address_users ALTER COLUMN filters DROP DEFAULT, DROP COLUMN rights;
ALTER TABLE addresses DROP COLUMN email;
