-- +goose Up
-- A running job keeps its file and who started it, so that a job whose
-- process stopped is resumed by another without the file being uploaded
-- again. The file is dropped when the job ends.
ALTER TABLE bulk_jobs ADD COLUMN csv bytea, ADD COLUMN actor text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bulk_jobs DROP COLUMN csv, DROP COLUMN actor;
