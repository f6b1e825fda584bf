package main

import (
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/service"
)

// eventCatalog is every subject the services publish, whichever of them
// this process runs (it consumes the others' events too): a consumer whose
// filter matches none of them stops the process at start.
func eventCatalog(prefix string, all []service.Service) (*events.Catalog, error) {
	var declared [][]string
	for _, svc := range all {
		declared = append(declared, svc.Publishes)
	}
	return events.NewCatalog(prefix, declared...)
}
