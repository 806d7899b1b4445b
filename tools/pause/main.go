// Command pause is the first process of every pod sandbox on the project's local node: it holds the
// pod's namespaces open by doing nothing. As PID 1 of the pod's PID namespace it also reaps the zombies
// of orphaned children (which the kernel re-parents to it), and it exits 0 on SIGTERM or SIGINT: PID 1
// gets no default signal handlers, so without its own it could only be killed with SIGKILL.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is the content hash of this module, stamped by the build (-X main.version=...).
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "-v" || os.Args[1] == "--version" {
			fmt.Println("pause", version)
			return
		}
		fmt.Fprintln(os.Stderr, "usage: pause [--version]")
		os.Exit(2)
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	reap() // children that exited before the handler was installed
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every child that has exited; signals coalesce, so one SIGCHLD may stand for many.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return // no child has exited (0) or there are no children at all (ECHILD)
		}
	}
}
