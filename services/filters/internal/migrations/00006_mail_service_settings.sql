-- +goose Up
-- mail_service_settings are a mail service's block and allow lists,
-- which its organization's owners and admins keep for every address of
-- it (compiled into each address's platform script). No row: empty.
CREATE TABLE mail_service_settings (
    mail_service_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    blocked_senders text[] NOT NULL DEFAULT '{}',
    allowed_senders text[] NOT NULL DEFAULT '{}',
    reject_blocked  boolean NOT NULL DEFAULT false,
    update_time     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE mail_service_settings;
