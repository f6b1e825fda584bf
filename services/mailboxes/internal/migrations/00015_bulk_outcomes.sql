-- +goose Up
-- Bulk jobs can be cancelled, count their rows by outcome, and keep what
-- became of each row: created, already there, or failed with the reason
-- and, for the error file, the row's fields as uploaded (header holds the
-- file's first line). members maps the users column's emails to the users
-- they named when the file was uploaded, so that a run resumed without the
-- uploader's token still gives each row its users.
ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_state_check;
ALTER TABLE bulk_jobs ADD CONSTRAINT bulk_jobs_state_check CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE bulk_jobs
    ADD COLUMN created_rows  integer NOT NULL DEFAULT 0,
    ADD COLUMN existing_rows integer NOT NULL DEFAULT 0,
    ADD COLUMN failed_rows   integer NOT NULL DEFAULT 0,
    ADD COLUMN header        text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN members       jsonb   NOT NULL DEFAULT '{}';
CREATE INDEX bulk_jobs_by_mail_service ON bulk_jobs (mail_service_id, create_time DESC, id DESC);

CREATE TABLE bulk_job_rows (
    job_id     uuid    NOT NULL REFERENCES bulk_jobs ON DELETE CASCADE,
    ordinal    integer NOT NULL,
    line       integer NOT NULL,
    local_part text    NOT NULL,
    outcome    text    NOT NULL CHECK (outcome IN ('created', 'already_exists', 'failed')),
    error      text    NOT NULL DEFAULT '',
    record     text[],
    PRIMARY KEY (job_id, ordinal)
);
CREATE INDEX bulk_job_rows_by_outcome ON bulk_job_rows (job_id, outcome, ordinal);

-- +goose Down
DROP TABLE bulk_job_rows;
DROP INDEX bulk_jobs_by_mail_service;
ALTER TABLE bulk_jobs DROP COLUMN created_rows, DROP COLUMN existing_rows, DROP COLUMN failed_rows, DROP COLUMN header, DROP COLUMN members;
DELETE FROM bulk_jobs WHERE state = 'cancelled';
ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_state_check;
ALTER TABLE bulk_jobs ADD CONSTRAINT bulk_jobs_state_check CHECK (state IN ('running', 'succeeded', 'failed'));
