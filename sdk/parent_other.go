//go:build !unix

package sdk

// watchParent does nothing where parent processes cannot be watched.
func watchParent() (stop func()) { return func() {} }
