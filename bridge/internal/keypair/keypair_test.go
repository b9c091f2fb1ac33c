package keypair

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// pemPair makes a self-signed certificate for cn and returns its PEM
// certificate and key.
func pemPair(t *testing.T, cn string) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// put writes b to name aside and renames it into place, so that the file
// os.Stat reaches is a new one, as a renewal's is.
func put(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+".new", name); err != nil {
		t.Fatal(err)
	}
}

func cn(p *Pair) string { return p.Leaf().Subject.CommonName }

// The pair follows its files: unchanged files are not read again, a renewal
// is loaded, and a half-written one (the certificate before its key) leaves
// the last good pair in use until the key follows. Under
// GODEBUG=x509keypairleaf=0, where tls.LoadX509KeyPair leaves Leaf nil, the
// pair parses it, at start-up and at a renewal, so that Leaf and Renewal give
// the certificates their callers judge (the webhook reads NotAfter).
func TestPairFollowsItsFiles(t *testing.T) {
	for _, godebug := range []string{"", "x509keypairleaf=0"} {
		t.Run("GODEBUG="+godebug, func(t *testing.T) {
			if godebug != "" {
				t.Setenv("GODEBUG", godebug)
			}
			pairFollowsItsFiles(t)
		})
	}
}

func pairFollowsItsFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := pemPair(t, "first")
	put(t, certFile, c1)
	put(t, keyFile, k1)
	p, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	changed := make(chan struct{}, 4)
	p.OnChange(func() { changes.Add(1); changed <- struct{}{} })
	first := p.Current()
	if cn(p) != "first" || p.Current() != first || p.Err() != nil {
		t.Fatalf("loaded %q, again the same %v, err %v", cn(p), p.Current() == first, p.Err())
	}
	if prev, _ := p.Renewal(); prev != nil {
		t.Errorf("a renewal before any: %v", prev.Subject)
	}

	c2, k2 := pemPair(t, "second")
	put(t, certFile, c2) // the key is still the first one's
	if cn(p) != "first" || p.Err() == nil {
		t.Errorf("half-renewed: %q, err %v; want the first pair kept and the mismatch reported", cn(p), p.Err())
	}
	put(t, keyFile, k2)
	if cn(p) != "second" || p.Err() != nil {
		t.Errorf("renewed: %q, err %v; want the second pair", cn(p), p.Err())
	}
	<-changed
	if prev, at := p.Renewal(); prev == nil || prev.Subject.CommonName != "first" || at.IsZero() {
		t.Errorf("renewal: %v at %v, want first's leaf", prev, at)
	}
	if got, err := p.GetClientCertificate(nil); err != nil || got.Leaf.Subject.CommonName != "second" {
		t.Errorf("GetClientCertificate: %v, %v", got, err)
	}

	// A file gone (mid-swap) keeps the pair in use as well.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if cn(p) != "second" || p.Err() == nil {
		t.Errorf("key file gone: %q, err %v", cn(p), p.Err())
	}
	if n := changes.Load(); n != 1 {
		t.Errorf("%d changes reported, want 1", n)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	c, _ := pemPair(t, "x")
	_, k := pemPair(t, "y")
	certFile, keyFile := filepath.Join(dir, "c"), filepath.Join(dir, "k")
	put(t, certFile, c)
	if _, err := Load(certFile, keyFile); err == nil {
		t.Error("no key file: loaded")
	}
	put(t, keyFile, k)
	if _, err := Load(certFile, keyFile); err == nil {
		t.Error("a key of another certificate: loaded")
	}
}
