// Package aip holds the list and update conventions every Mailplane API
// follows, after Google's API Improvement Proposals: page sizes and opaque
// page tokens (AIP-158), a small filter language (AIP-160), order_by
// (AIP-132), update masks (AIP-134) and resource names (AIP-122).
//
// Errors are InvalidArgument *errs.Error values naming the request field by
// its JSON name ("pageToken", "filter", "orderBy", "updateMask"), as the
// validation interceptor does.
package aip
