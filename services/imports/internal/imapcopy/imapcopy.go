// Package imapcopy copies whole mailboxes between IMAP accounts: every
// folder, each message byte for byte with its flags, keywords and internal
// date, duplicates once, resumable from checkpoints. The source is only
// read (EXAMINE, BODY.PEEK); at the destination nothing is changed or
// deleted, only appended. docs/imports.md ("Folders", "Duplicates") says
// how folders are mapped and what makes two messages the same.
package imapcopy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
)

// Security is how a connection is protected.
type Security int

const (
	TLS      Security = iota // implicit TLS (993)
	StartTLS                 // STARTTLS on 143, refused if not offered
	Plain                    // no TLS: loopback tests and the in-cluster Dovecot only
)

// Server is an IMAP server.
type Server struct {
	Host     string
	Port     int
	Security Security
	// TLS nil: the system roots, ServerName = Host; an explicit exception
	// sets its own.
	TLS *tls.Config
	// PublicOnly refuses to connect to an address that is not public
	// (Public), checked on the address dialled, after Host is resolved:
	// a check of the name before the job starts does not hold for its
	// runs, hours later, when the name may point inside the network
	// (DNS rebinding).
	PublicOnly bool
}

// Public reports whether ip is an address anyone may make the service
// connect to: not loopback, private, link-local, multicast or
// unspecified (IPv4-mapped addresses are judged as IPv4).
func Public(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast())
}

// Account is a login on a server. For the destination the caller logs in
// as the Dovecot master user (Login, Password) acting as the address
// (As): no customer password is stored for it.
type Account struct {
	Server
	Login, Password string
	// As, when set, is the user the login acts as: SASL PLAIN's
	// authorization identity (RFC 4616), which Dovecot grants master
	// users. Dovecot's "user*master" login form is off in
	// deploy/mail/dovecot, since '*' is legal in a local part.
	As string
}

// Errors of Check and Run, wrapped with the detail.
var (
	// ErrUnreachable: the dial or the greeting failed, or timed out.
	ErrUnreachable = errors.New("imap server unreachable")
	// ErrTLS: the certificate or the handshake was refused; the x509
	// reason is in the message.
	ErrTLS = errors.New("imap tls refused")
	// ErrLogin: the credentials were refused.
	ErrLogin = errors.New("imap login refused")
	// ErrPrivate: the server's address is not public and the server
	// is PublicOnly; nothing was sent to it.
	ErrPrivate = errors.New("imap server address not public")
)

// Progress is where a job stands; counts are totals over the whole job
// (all runs of it).
type Progress struct {
	FoldersTotal, FoldersDone                                      int
	MessagesTotal, MessagesCopied, MessagesSkipped, MessagesFailed int64 // Skipped: duplicates
	Bytes                                                          int64 // copied
}

// Failure is a message that could not be copied.
type Failure struct {
	Source  int    // index in Job.Sources
	Folder  string // source folder name, decoded
	UID     uint32
	Subject string
	Reason  string
}

// Checkpoints keeps a job's progress so a restarted job resumes and copies
// nothing twice. The imports service implements it in PostgreSQL (one
// transaction per Save).
type Checkpoints interface {
	// Load returns the saved state: per (source, folder) the UIDVALIDITY
	// and last source UID done, and the progress.
	Load(ctx context.Context) (State, error)
	// Save records that folder's messages up to lastUID are done, the
	// progress so far, and failures since the last Save.
	Save(ctx context.Context, source int, folder string, uidValidity, lastUID uint32, p Progress, failed []Failure) error
}

// State is what Checkpoints.Load returns.
type State struct {
	Folders  map[FolderKey]FolderState
	Progress Progress
}

// FolderKey names a source folder: the source's index in Job.Sources and
// the folder's decoded name.
type FolderKey struct {
	Source int
	Folder string
}

// FolderState is how far a source folder was copied. Run reads
// UIDValidity and LastUID only: Save has no argument for Done, and every
// run lists each folder again and copies the UIDs after LastUID (a folder
// done costs an EXAMINE and an empty FETCH).
type FolderState struct {
	UIDValidity, LastUID uint32
	Done                 bool
}

// Job copies every folder of each source into the destination.
type Job struct {
	Sources     []Account // 1 or 2
	Destination Account
	Checkpoints Checkpoints
	// Progress, optional, is called after each batch (for streaming to
	// watchers).
	Progress func(Progress)
}
