-- +goose Up
-- Mail services made before other services listened for
-- mailboxes.mail_service.created (accounts keeps each organization's
-- domains from it) are announced again once, by the background work. New
-- ones announce themselves when they are created.
ALTER TABLE mail_services ADD COLUMN announced boolean NOT NULL DEFAULT false;
ALTER TABLE mail_services ALTER COLUMN announced SET DEFAULT true;
CREATE INDEX mail_services_unannounced ON mail_services (id) WHERE NOT announced;

-- +goose Down
ALTER TABLE mail_services DROP COLUMN announced;
