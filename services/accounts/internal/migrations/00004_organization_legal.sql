-- +goose Up
-- What contracts (the DPA) name the customer by.
ALTER TABLE organizations
    ADD COLUMN legal_name text NOT NULL DEFAULT '',
    ADD COLUMN address    text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE organizations DROP COLUMN legal_name, DROP COLUMN address;
