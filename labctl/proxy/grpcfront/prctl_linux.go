package main

import "syscall"

// dieWithParent asks the kernel to kill this process when the proxy dies (PR_SET_PDEATHSIG); the end
// of input on the socket ends it too, everywhere.
func dieWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
}
