-- +goose Up
-- ListAddresses pages by create time too (order_by "create_time [desc]"):
-- keyset pages read this index instead of sorting every address of the
-- mail service for each page.
CREATE INDEX addresses_by_create_time ON addresses (mail_service_id, create_time, id);

-- +goose Down
DROP INDEX addresses_by_create_time;
