-- +goose Up
-- A running job keeps its file and who started it, so that a job whose
-- process stopped is resumed by another without the file being uploaded
-- again. The file is dropped when the job ends. resumes counts the runs
-- since the last upload, which caps them.
ALTER TABLE bulk_jobs
    ADD COLUMN csv bytea,
    ADD COLUMN actor text NOT NULL DEFAULT '',
    ADD COLUMN resumes integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE bulk_jobs DROP COLUMN csv, DROP COLUMN actor, DROP COLUMN resumes;
