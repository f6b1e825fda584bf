-- +goose Up
-- mail_services is the local copy of mailboxes' verified mail services:
-- the organization's own domains, whose mail the external-mail mention
-- never marks.
CREATE TABLE mail_services (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    domain          text NOT NULL,
    active          boolean NOT NULL DEFAULT true
);
CREATE INDEX mail_services_organization ON mail_services (organization_id);

-- +goose Down
DROP TABLE mail_services;
