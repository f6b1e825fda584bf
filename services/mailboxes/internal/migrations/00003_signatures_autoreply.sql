-- +goose Up
-- Signature templates of a mail service, which its addresses choose from.
-- Display names are unique per mail service regardless of case.
CREATE TABLE signatures (
    id              uuid PRIMARY KEY,
    mail_service_id uuid        NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    display_name    text        NOT NULL,
    template        text        NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX signatures_display_name ON signatures (mail_service_id, lower(display_name));

-- The signature an address uses; deleting the template leaves its addresses
-- without one.
ALTER TABLE addresses ADD COLUMN signature_id uuid REFERENCES signatures ON DELETE SET NULL;
CREATE INDEX addresses_signature ON addresses (signature_id) WHERE signature_id IS NOT NULL;

-- An address's auto-reply (out of office). No row: never set, off. The mail
-- server answers each sender at most once per interval_days (Sieve
-- "vacation" :days), between start_time and end_time when set.
CREATE TABLE auto_replies (
    address_id    uuid        PRIMARY KEY REFERENCES addresses ON DELETE CASCADE,
    enabled       boolean     NOT NULL,
    subject       text        NOT NULL DEFAULT '',
    message       text        NOT NULL DEFAULT '',
    start_time    timestamptz,
    end_time      timestamptz,
    interval_days integer     NOT NULL DEFAULT 7 CHECK (interval_days BETWEEN 1 AND 30),
    update_time   timestamptz NOT NULL DEFAULT now(),
    CHECK (start_time IS NULL OR end_time IS NULL OR end_time > start_time)
);

-- +goose Down
DROP TABLE auto_replies;
ALTER TABLE addresses DROP COLUMN signature_id;
DROP TABLE signatures;
