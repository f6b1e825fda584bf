-- +goose Up
-- Each upload that starts or restarts a bulk job, for the per-organization
-- hourly cap; rows over an hour old are deleted as new ones come.
CREATE TABLE bulk_uploads (
    organization_id uuid NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bulk_uploads_by_organization ON bulk_uploads (organization_id, create_time);

-- +goose Down
DROP TABLE bulk_uploads;
