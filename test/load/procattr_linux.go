package main

import "syscall"

// dieWithParent makes a child process get SIGKILL when the load exits, so
// that an interrupted run leaves no webhook behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
