//go:build !linux

package main

import "syscall"

// dieWithParent has no portable equivalent off Linux: a run stopped by a
// signal still stops its webhook, one killed outright may leave it running.
func dieWithParent() *syscall.SysProcAttr { return nil }
