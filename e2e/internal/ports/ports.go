// Package ports finds free TCP ports for the harness's servers.
package ports

import (
	"fmt"
	"net"
)

// Free returns a TCP port on 127.0.0.1 that was free a moment ago: the
// caller's server binds it next (and retries if another process was faster).
func Free() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
