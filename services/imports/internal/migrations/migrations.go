// Package migrations holds the imports schema's SQL migrations.
package migrations

import "embed"

// FS holds the migrations, applied in order by goose.
//
//go:embed *.sql
var FS embed.FS
