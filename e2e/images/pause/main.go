// Command pause is the pod sandbox image of the local real node: it holds
// the pod's namespaces, reaps orphaned children (it is PID 1 of the pod when
// the pod shares its process namespace) and exits 0 on SIGTERM or SIGINT,
// as registry.k8s.io/pause does. Built static and put into an OCI image by
// e2e/images; nothing is pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
