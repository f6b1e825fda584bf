package config

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Listen binds the TCP address of setting name. Its error names the address
// and the setting, so that a taken port says which one and how to move it:
// "listen on 127.0.0.1:9101 (MAILPLANE_SOCKETMAP_ADDR): address already in use".
// A process binds every port this way before it announces anything.
func Listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// The system's words without the "listen tcp <addr>" net repeats.
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err
		} else if oe := (*net.OpError)(nil); errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, EnvName(name), err)
	}
	return ln, nil
}
