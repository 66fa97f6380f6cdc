// Package proxy is the data plane of the extension: one local listener per upstream, each connection forwarded
// over mutual TLS to the mesh gateway with the function's identity, and the background refresh that swaps that
// identity before its leaf expires.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/bundle"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/config"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/jsonlog"
)

// Stats are the proxy's counters, logged periodically and on SHUTDOWN.
type Stats struct {
	Connections       atomic.Int64 // accepted local connections
	Active            atomic.Int64 // currently open local connections
	DialFailures      atomic.Int64 // TCP connects to the mesh gateway that failed
	HandshakeFailures atomic.Int64 // TLS handshakes that failed, including rejected peer identities
	BytesOut          atomic.Int64 // function -> mesh
	BytesIn           atomic.Int64 // mesh -> function
	Refreshes         atomic.Int64 // identity swaps
	RefreshFailures   atomic.Int64
	ExpiredRejects    atomic.Int64 // connections closed because the leaf had expired and no fresh one came in time
}

// Fields returns the counters as logger key/value pairs.
func (s *Stats) Fields() []interface{} {
	return []interface{}{
		"connections", s.Connections.Load(), "active", s.Active.Load(), "dialFailures", s.DialFailures.Load(),
		"handshakeFailures", s.HandshakeFailures.Load(), "bytesOut", s.BytesOut.Load(), "bytesIn", s.BytesIn.Load(),
		"refreshes", s.Refreshes.Load(), "refreshFailures", s.RefreshFailures.Load(),
		"expiredRejects", s.ExpiredRejects.Load(),
	}
}

// Proxy binds one local listener per upstream and forwards each connection over mTLS to the mesh gateway.
type Proxy struct {
	gateway     string
	namespace   string
	datacenter  string
	upstreams   []config.Upstream
	dialTimeout time.Duration
	log         *jsonlog.Logger
	stats       *Stats
	now         func() time.Time

	identity atomic.Pointer[bundle.Identity]
	// refresh starts a background refresh when one is due and returns the channel of the running one (nil: none).
	refresh func(trigger string) <-chan struct{}

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// New builds a proxy for cfg's upstreams. Call Bind, SetIdentity, then Serve.
func New(cfg *config.Config, log *jsonlog.Logger, stats *Stats) *Proxy {
	dt := cfg.DialTimeout
	if dt <= 0 {
		dt = config.DefaultDialTimeout
	}
	return &Proxy{
		gateway: cfg.Gateway, namespace: cfg.Namespace, datacenter: cfg.Datacenter, upstreams: cfg.Upstreams,
		dialTimeout: dt, log: log, stats: stats, now: time.Now, conns: map[net.Conn]struct{}{},
	}
}

// SetIdentity atomically swaps the certificates used for new connections; open connections keep theirs.
func (p *Proxy) SetIdentity(id *bundle.Identity) { p.identity.Store(id) }

// SetRefresh makes every accepted connection call check (Refresher.Check); call it before Serve.
func (p *Proxy) SetRefresh(check func(trigger string) <-chan struct{}) { p.refresh = check }

// Identity returns the current identity (nil before the first SetIdentity).
func (p *Proxy) Identity() *bundle.Identity { return p.identity.Load() }

// Bind listens on 127.0.0.1:<localPort> for every upstream (port 0 picks a free port; tests use it).
// On failure nothing stays bound.
func (p *Proxy) Bind() error {
	var lns []net.Listener
	for _, u := range p.upstreams {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(u.LocalPort))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen on %s for upstream %q: %w", addr, u.Service, err)
		}
		lns = append(lns, ln)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, l := range lns {
			l.Close()
		}
		return errors.New("proxy closed")
	}
	p.listeners = lns
	return nil
}

// Addrs returns the bound listener addresses, in upstream order.
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]net.Addr, len(p.listeners))
	for i, l := range p.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Serve starts accepting on every bound listener. It returns immediately.
func (p *Proxy) Serve() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ln := range p.listeners {
		p.wg.Add(1)
		go p.acceptLoop(ln, p.upstreams[i])
	}
}

// Close closes the listeners and every open connection, and waits for the accept loops to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for _, l := range p.listeners {
		l.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop(ln net.Listener, up config.Upstream) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			p.log.Error("accept failed; listener stopped", "upstream", up.Service, "addr", ln.Addr().String(),
				"error", err)
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		go p.handle(c, up)
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// SNI is the server name the mesh gateway routes on.
func (p *Proxy) SNI(service, trustDomain string) string {
	return service + "." + p.namespace + "." + p.datacenter + ".internal." + trustDomain
}

// SpiffeID is the identity the upstream must present.
func (p *Proxy) SpiffeID(service, trustDomain string) string {
	return "spiffe://" + trustDomain + "/ns/" + p.namespace + "/dc/" + p.datacenter + "/svc/" + service
}

// PeerIdentityError is a peer certificate that does not chain to the mesh CA or is not the expected service.
type PeerIdentityError struct{ Reason string }

func (e *PeerIdentityError) Error() string { return "peer rejected: " + e.Reason }

// tlsConfig is the client config for one connection, bound to one identity snapshot so that the leaf, the roots
// and the trust domain always come from the same bundle even if a refresh swaps the identity mid-handshake.
func (p *Proxy) tlsConfig(id *bundle.Identity, up config.Upstream) *tls.Config {
	want := p.SpiffeID(up.Service, id.TrustDomain)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: p.SNI(up.Service, id.TrustDomain),
		// Always present the leaf, whatever CAs the server's CertificateRequest lists.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &id.Cert, nil },
		// InsecureSkipVerify turns off crypto/tls's built-in verification only, not verification: the SNI is a
		// routing name for the mesh gateway (<svc>.<ns>.<dc>.internal.<trust domain>), which no mesh certificate
		// carries as a DNS SAN, so hostname verification would always fail. Mesh identity is the SPIFFE URI SAN
		// instead. VerifyConnection below does the whole check itself, on every handshake (full or resumed):
		// the chain must verify against the mesh CA roots and the leaf must be the expected service's SVID.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs.PeerCertificates, id.Roots, want, p.now())
		},
	}
}

// verifyPeer checks that certs[0] chains to roots (through certs[1:]) and carries exactly the URI SAN want.
func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, want string, now time.Time) error {
	if len(certs) == 0 {
		return &PeerIdentityError{"no certificate presented"}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return &PeerIdentityError{fmt.Sprintf("certificate does not chain to the mesh CA: %v", err)}
	}
	// An X.509 SVID carries exactly one URI SAN (SPIFFE X509-SVID spec, section 2).
	if len(leaf.URIs) != 1 {
		return &PeerIdentityError{
			fmt.Sprintf("certificate has %d URI SANs, want exactly one (%s)", len(leaf.URIs), want),
		}
	}
	if got := leaf.URIs[0].String(); got != want {
		return &PeerIdentityError{fmt.Sprintf("certificate is %s, want %s", got, want)}
	}
	return nil
}

func (p *Proxy) handle(client net.Conn, up config.Upstream) {
	defer p.untrack(client)
	defer client.Close()
	p.stats.Connections.Add(1)
	p.stats.Active.Add(1)
	defer p.stats.Active.Add(-1)

	ctx, cancel := context.WithTimeout(context.Background(), p.dialTimeout)
	defer cancel()
	id := p.currentIdentity(ctx, up)
	if id == nil {
		return
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.gateway)
	if err != nil {
		p.stats.DialFailures.Add(1)
		p.log.Warn("mesh gateway unreachable", "upstream", up.Service, "gateway", p.gateway, "error", err)
		return
	}
	if !p.track(raw) {
		raw.Close()
		return
	}
	defer p.untrack(raw)
	cfg := p.tlsConfig(id, up)
	tc := tls.Client(raw, cfg)
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		p.stats.HandshakeFailures.Add(1)
		kind := "tls handshake failed"
		var pe *PeerIdentityError
		if errors.As(err, &pe) {
			kind = "upstream identity rejected"
		}
		p.log.Warn(kind+"; connection closed", "upstream", up.Service, "sni", cfg.ServerName,
			"gateway", p.gateway, "error", err)
		return
	}
	cancel()
	p.pipe(client, tc)
}

// currentIdentity returns the identity to present. The first connection after a thaw is usually what notices that
// the leaf is due for renewal: it starts the refresh and goes on with the current leaf while that is still valid.
// A leaf that has already expired would be refused by the peer, so then the connection waits (within ctx) for the
// refresh. It returns nil, having logged why, when no valid identity is available.
func (p *Proxy) currentIdentity(ctx context.Context, up config.Upstream) *bundle.Identity {
	id := p.identity.Load()
	if id == nil { // cannot happen after a successful init
		p.log.Error("connection refused: no identity loaded", "upstream", up.Service)
		return nil
	}
	if p.refresh == nil {
		return id
	}
	running := p.refresh("connection")
	if !id.Expired(p.now()) {
		return id
	}
	start := time.Now()
	if running != nil {
		select {
		case <-running:
		case <-ctx.Done():
		}
	}
	if next := p.identity.Load(); !next.Expired(p.now()) {
		p.log.Info("connection waited for the certificate refresh", "upstream", up.Service,
			"waitedMs", time.Since(start).Milliseconds(), "serial", next.Serial())
		return next
	}
	p.stats.ExpiredRejects.Add(1)
	p.log.Error("certificate expired and no fresh one could be loaded; connection closed", "upstream", up.Service,
		"serial", id.Serial(), "expired", id.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"waitedMs", time.Since(start).Milliseconds())
	return nil
}

// pipe copies both ways, half-closing on EOF, and closes both sides on any error.
func (p *Proxy) pipe(client net.Conn, upstream *tls.Conn) {
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(&countingWriter{upstream, &p.stats.BytesOut}, client)
		if err == nil {
			err = upstream.CloseWrite()
		}
		errc <- err
	}()
	go func() {
		_, err := io.Copy(&countingWriter{client, &p.stats.BytesIn}, upstream)
		if err == nil {
			if cw, ok := client.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		errc <- err
	}()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			// Unblock the other direction.
			client.Close()
			upstream.Close()
		}
	}
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
