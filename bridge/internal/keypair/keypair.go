// Package keypair keeps a TLS client certificate loaded from its two files
// and loads it again when they change, so that a certificate renewed on disk
// (a rewrite, or the symlink swap of a Kubernetes secret volume that
// cert-manager renews) is sent in the next handshake without a restart.
package keypair

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// Pair is a certificate and key loaded from CertFile and KeyFile. Safe for
// concurrent use.
type Pair struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	stamp    [2]stamp          // of the files when cert was loaded
	lastErr  error             // why the files on disk could not be loaded again; nil when cert is theirs
	prev     *x509.Certificate // the leaf cert replaced; nil before the first renewal
	renewed  time.Time         // when cert replaced prev
	onChange func()            // called after a renewal, on a goroutine of its own
}

// stamp tells a file's content changed without reading it: a rewrite
// changes the modification time or the size, and a file renamed into place
// or a symlink swap the file os.Stat reaches.
type stamp struct{ info os.FileInfo }

func (s stamp) same(o stamp) bool {
	return s.info != nil && o.info != nil && os.SameFile(s.info, o.info) &&
		s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

// Load loads the pair from its files.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	st, err := p.stat()
	if err != nil {
		return nil, err
	}
	cert, err := load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	p.cert, p.stamp = &cert, st
	return p, nil
}

// load loads a pair with its leaf parsed: tls.LoadX509KeyPair leaves Leaf
// nil under GODEBUG=x509keypairleaf=0, and Leaf and Renewal promise one.
func load(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil && cert.Leaf == nil {
		cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
	}
	return cert, err
}

func (p *Pair) stat() ([2]stamp, error) {
	var st [2]stamp
	for i, name := range []string{p.certFile, p.keyFile} {
		info, err := os.Stat(name)
		if err != nil {
			return st, err
		}
		st[i] = stamp{info}
	}
	return st, nil
}

// Current returns the certificate, loaded again first when either file
// changed since it was loaded. A pair that does not load (a file missing, or
// a certificate written before its new key, halfway through a renewal)
// leaves the last good certificate in use, and is tried again on the next
// call; Err says why meanwhile.
func (p *Pair) Current() *tls.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.stat()
	if err == nil && st[0].same(p.stamp[0]) && st[1].same(p.stamp[1]) {
		return p.cert
	}
	if err == nil {
		var cert tls.Certificate
		if cert, err = load(p.certFile, p.keyFile); err == nil {
			p.prev, p.renewed = p.cert.Leaf, time.Now()
			p.cert, p.stamp = &cert, st
			if p.onChange != nil {
				go p.onChange()
			}
		}
	}
	p.lastErr = err
	return p.cert
}

// OnChange sets a function called after each renewal (on a goroutine of
// its own): to close the pooled connections opened with the certificate
// before, say.
func (p *Pair) OnChange(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChange = f
}

// Renewal returns the leaf of the certificate the last renewal replaced,
// and when that was; nil before the first one.
func (p *Pair) Renewal() (*x509.Certificate, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prev, p.renewed
}

// Err reports why the files could not be loaded again at the last Current,
// or nil when the certificate in use is what they hold.
func (p *Pair) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// Leaf returns the current certificate's leaf.
func (p *Pair) Leaf() *x509.Certificate { return p.Current().Leaf }

// GetClientCertificate is tls.Config's hook of the same name: the current
// certificate, for every handshake a server asks for one in.
func (p *Pair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.Current(), nil
}

// CAPool reads the PEM CA bundle file into a pool of trusted roots. The
// error names the file.
func CAPool(file string) (*x509.CertPool, error) {
	pool, _, err := CAPoolPEM(file)
	return pool, err
}

// CAPoolPEM is CAPool that also returns the bundle as read.
func CAPoolPEM(file string) (*x509.CertPool, []byte, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("no PEM certificates in %s", file)
	}
	return pool, pem, nil
}
