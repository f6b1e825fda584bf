-- +goose Up
-- The LMTP server finds a recipient's list by its domain at every RCPT:
-- an index, not a scan of every organization's lists.
CREATE INDEX lists_domain ON lists (lower(domain));

-- +goose Down
DROP INDEX lists_domain;
