package keypair

import (
	"path/filepath"
	"testing"
)

// Under GODEBUG=x509keypairleaf=0 tls.LoadX509KeyPair leaves Leaf nil; the
// pair parses it, at start-up and at a renewal, so that Leaf and Renewal
// give the certificates their callers judge (the webhook reads NotAfter).
func TestPairHasItsLeafWhateverGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "x509keypairleaf=0")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := pemPair(t, "first")
	put(t, certFile, c1)
	put(t, keyFile, k1)
	p, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if l := p.Leaf(); l == nil || l.Subject.CommonName != "first" {
		t.Fatalf("leaf %v, want first's", l)
	}
	c2, k2 := pemPair(t, "second")
	put(t, certFile, c2)
	put(t, keyFile, k2)
	if l := p.Leaf(); l == nil || l.Subject.CommonName != "second" {
		t.Fatalf("leaf after the renewal %v, want second's", l)
	}
	if prev, _ := p.Renewal(); prev == nil || prev.Subject.CommonName != "first" {
		t.Errorf("renewal replaced %v, want first's leaf", prev)
	}
}
