package lists

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// holder is how mailboxes knows the lists' reservations.
const holder = "lists"

// Mailboxes is what the lists service asks the mailboxes service, on the
// caller's behalf (their token travels with each call).
type Mailboxes interface {
	// Domain returns mail service ms's domain; NotFound for another
	// organization's or a deleted one.
	Domain(ctx context.Context, org, ms uuid.UUID) (string, error)
	// Reserve keeps localPart of ms for the lists service; a retry with
	// the same request id answers the first one. AlreadyExists when an
	// address, alias or reservation has it.
	Reserve(ctx context.Context, org, ms uuid.UUID, localPart string, requestID uuid.UUID) error
	// Release gives localPart back; releasing what is not reserved is no
	// error.
	Release(ctx context.Context, org, ms uuid.UUID, localPart string) error
}

// MailboxesClient is Mailboxes over the mailboxes service's gRPC API.
type MailboxesClient struct {
	services     mailboxesv1.MailServiceServiceClient
	reservations mailboxesv1.ReservationServiceClient
}

// NewMailboxesClient returns a client over conn.
func NewMailboxesClient(conn grpc.ClientConnInterface) *MailboxesClient {
	return &MailboxesClient{services: mailboxesv1.NewMailServiceServiceClient(conn), reservations: mailboxesv1.NewReservationServiceClient(conn)}
}

// Domain asks mailboxes for the mail service.
func (c *MailboxesClient) Domain(ctx context.Context, org, ms uuid.UUID) (string, error) {
	resp, err := c.services.GetMailService(access.Forward(ctx), &mailboxesv1.GetMailServiceRequest{Name: mailServiceName(org, ms)})
	if err != nil {
		return "", fromMailboxes(err, "read mail service")
	}
	if resp.GetMailService().GetState() != mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED {
		return "", errs.E(errs.FailedPrecondition, "the domain %s is not verified yet: a list's mail needs it", resp.GetMailService().GetDomain())
	}
	return resp.GetMailService().GetDomain(), nil
}

// Reserve asks mailboxes to keep localPart.
func (c *MailboxesClient) Reserve(ctx context.Context, org, ms uuid.UUID, localPart string, requestID uuid.UUID) error {
	_, err := c.reservations.CreateReservation(access.Forward(ctx), &mailboxesv1.CreateReservationRequest{
		Parent: mailServiceName(org, ms), LocalPart: localPart, Holder: holder, RequestId: requestID.String(),
	})
	return fromMailboxes(err, "reserve "+localPart)
}

// Release asks mailboxes to give localPart back.
func (c *MailboxesClient) Release(ctx context.Context, org, ms uuid.UUID, localPart string) error {
	_, err := c.reservations.DeleteReservation(access.Forward(ctx), &mailboxesv1.DeleteReservationRequest{
		Name: mailServiceName(org, ms) + "/reservations/" + localPart,
	})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return fromMailboxes(err, "release "+localPart)
}

// fromMailboxes turns an error of mailboxes into one of this service:
// what the caller may see (not found, taken, refused) keeps its kind.
func fromMailboxes(err error, what string) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		return errs.E(errs.NotFound, "mail service not found")
	case codes.AlreadyExists:
		return errs.E(errs.AlreadyExists, "%s", st.Message())
	case codes.PermissionDenied:
		return errs.E(errs.PermissionDenied, "%s", st.Message())
	case codes.InvalidArgument, codes.FailedPrecondition:
		return errs.E(errs.FailedPrecondition, "%s", st.Message())
	case codes.Unavailable, codes.DeadlineExceeded:
		// The caller may retry, which a 500 would not tell them.
		return status.Error(codes.Unavailable, "the mailboxes service is unavailable; try again shortly")
	}
	return fmt.Errorf("mailboxes: %s: %w", what, err)
}
