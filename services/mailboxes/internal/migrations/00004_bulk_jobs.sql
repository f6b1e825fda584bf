-- +goose Up
-- Bulk jobs: one per CSV file and mail service. content_sha256 makes a second
-- upload of the same file find the job of the first instead of starting
-- another. update_time is the running job's heartbeat (written with every
-- batch): a running job not heard of for a minute was abandoned (the process
-- stopped), and uploading the file again takes it over. attempt counts the
-- runs; a run writes only while the attempt is still its own.
CREATE TABLE bulk_jobs (
    id              uuid PRIMARY KEY,
    mail_service_id uuid        NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    content_sha256  bytea       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    total_rows      integer     NOT NULL,
    done_rows       integer     NOT NULL DEFAULT 0,
    error           text        NOT NULL DEFAULT '',
    attempt         integer     NOT NULL DEFAULT 1,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now(),
    end_time        timestamptz,
    CONSTRAINT bulk_jobs_content UNIQUE (mail_service_id, content_sha256)
);

-- +goose Down
DROP TABLE bulk_jobs;
