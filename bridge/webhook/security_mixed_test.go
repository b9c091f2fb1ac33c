package webhook

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// fakeDNS makes the process's default resolver (the one the guard's
// dialers use) answer every A query with addrs, in that order, and every
// other query with no records. It is undone when the test ends.
func fakeDNS(t *testing.T, addrs ...netip.Addr) {
	t.Helper()
	r := net.DefaultResolver
	preferGo, dial := r.PreferGo, r.Dial
	t.Cleanup(func() { r.PreferGo, r.Dial = preferGo, dial })
	r.PreferGo = true
	r.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, addrs)
		return client, nil
	}
}

// serveDNS answers DNS-over-stream queries (two-byte length prefix) on c.
func serveDNS(c net.Conn, addrs []netip.Addr) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return
		}
		question, err := p.Question()
		if err != nil {
			return
		}
		b := dnsmessage.NewBuilder(make([]byte, 2, 512), dnsmessage.Header{
			ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
		})
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(question)
		_ = b.StartAnswers()
		if question.Type == dnsmessage.TypeA {
			for _, a := range addrs {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: a.As4()})
			}
		}
		msg, err := b.Finish()
		if err != nil {
			return
		}
		binary.BigEndian.PutUint16(msg[:2], uint16(len(msg)-2))
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

// A receiver's name resolves to a private address (a stale record, an
// internal interface) and to its public one. With deny_private_networks the
// private address is refused and the public one is dialled. When the
// receiver is down (its public address refuses the connection), the dialler
// reports the first error it met, the guard's: that failure used to be
// classed permanent, and the record dead-lettered although the receiver was
// merely down. It is retryable.
func TestGuardReceiverDownWithMixedAddressesIsRetryable(t *testing.T) {
	// Two loopback addresses: the guard refuses the first (loopback is a
	// blocked class), and is told to allow the second (below), which stands
	// for the receiver's public address. Alike but for that, the resolver
	// keeps them in the order DNS gave, so the refused one is dialled first.
	public := netip.MustParseAddr("127.0.0.3")
	// A port nothing listens on.
	l, err := net.Listen("tcp", net.JoinHostPort(public.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	blocked := netip.MustParseAddr("127.0.0.2")
	fakeDNS(t, blocked, public)

	cfg := config.Webhook{DenyPrivateNetworks: true}
	sec, errs := newSecurity(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tr := newTransport()
	sec.configure(tr)
	sec.guard.allow = func(ap netip.AddrPort) bool { return ap.Addr().Unmap() == public }

	// Control: with the receiver up on the public address, the same name is
	// delivered to (the private address is skipped, the public one used).
	up, err := net.Listen("tcp", net.JoinHostPort(public.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go func() { _ = srv.Serve(up) }()
	t.Cleanup(func() { _ = srv.Close() })
	upURL := "http://receiver.mixed.example:" + itoa(up.Addr().(*net.TCPAddr).Port) + "/hook"
	if _, err := deliver(t, t.Context(), newTarget(t, upURL, func(o *Options) { o.Transport = tr; o.Config.DenyPrivateNetworks = true }), record()); err != nil {
		t.Fatalf("receiver up: %v", err)
	}

	url := "http://receiver.mixed.example:" + itoa(port) + "/hook"
	tg := newTarget(t, url, func(o *Options) { o.Transport = tr; o.Config.DenyPrivateNetworks = true })
	_, err = deliver(t, t.Context(), tg, record())
	if err == nil {
		t.Fatal("delivered to a closed port")
	}
	// The refused address was dialled first, so the dialler's error was the
	// guard's: the case this test is about (else it would say nothing).
	if !strings.Contains(err.Error(), "its allowed addresses did not answer") {
		t.Fatalf("error %v: the refused address was not the first dialled", err)
	}
	if k := target.KindOf(err); k != target.Retryable {
		t.Fatalf("kind %s, want retryable: the receiver's allowed address refused the connection (receiver down); error: %v", k, err)
	}
}
