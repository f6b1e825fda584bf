package dns

import (
	mdns "github.com/miekg/dns"
)

// tsigKey is the key a LocalServer accepts updates signed with.
type tsigKey struct {
	name, algorithm, secret string
}

// serverKeys gives miekg/dns the server's TSIG key, which AllowUpdates may
// set while it runs.
type serverKeys struct{ s *LocalServer }

func (k serverKeys) Generate(msg []byte, t *mdns.TSIG) ([]byte, error) {
	return nil, mdns.ErrSecret
}

func (k serverKeys) Verify(msg []byte, t *mdns.TSIG) error {
	return mdns.ErrSecret
}

// update answers an RFC 2136 update.
func (s *LocalServer) update(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetRcode(req, mdns.RcodeRefused)
	w.WriteMsg(m) //nolint:errcheck
}
