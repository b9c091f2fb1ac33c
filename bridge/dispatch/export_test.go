package dispatch

// DefaultOpenJitter is defaultOpenJitter, for the package's external tests.
var DefaultOpenJitter = defaultOpenJitter
