package proxy

import (
	"context"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/bundle"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/config"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/jsonlog"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/meshtest"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/ssm"
)

type proxyFixture struct {
	proxy *Proxy
	stats *Stats
	logs  *meshtest.SyncBuffer
	addr  string
	gw    *meshtest.Gateway
	ca    *meshtest.CA
}

var wantSNI = meshtest.SNI("feature-store")

// startProxy binds and serves a proxy with the identity of the bundle raw; it is closed when the test ends.
func startProxy(t *testing.T, cfg *config.Config, logs *meshtest.SyncBuffer, stats *Stats, raw string) *Proxy {
	t.Helper()
	p := New(cfg, jsonlog.New(logs), stats)
	id, err := bundle.Parse([]byte(raw), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.SetIdentity(id)
	if err := p.Bind(); err != nil {
		t.Fatal(err)
	}
	p.Serve()
	t.Cleanup(p.Close)
	return p
}

// newProxyFixture runs a proxy whose identity comes from ca, in front of a gateway presenting serverCert.
func newProxyFixture(t *testing.T, ca *meshtest.CA, client meshtest.Leaf, serverCert meshtest.Leaf) *proxyFixture {
	t.Helper()
	gw := meshtest.StartGateway(t, serverCert.TLS, ca, wantSNI, meshtest.StartEcho(t))
	logs := &meshtest.SyncBuffer{}
	stats := &Stats{}
	cfg := &config.Config{
		Gateway: gw.Addr, Namespace: meshtest.Namespace, Datacenter: meshtest.Datacenter,
		Upstreams: []config.Upstream{{Service: "feature-store", LocalPort: 0}}, DialTimeout: 2 * time.Second,
	}
	p := startProxy(t, cfg, logs, stats, meshtest.BundleJSON(t, client, ca.PEM))
	return &proxyFixture{proxy: p, stats: stats, logs: logs, addr: p.Addrs()[0].String(), gw: gw, ca: ca}
}

func TestProxyEndToEndRealTLS(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	client := ca.FreshLeaf(t, spiffe("my-function"))
	f := newProxyFixture(t, ca, client, ca.FreshLeaf(t, spiffe("feature-store")))

	got, err := meshtest.RoundTrip(t, f.addr, "hello mesh")
	if err != nil || got != "hello mesh" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	snis, clients, uris := f.gw.Seen()
	if len(snis) != 1 || snis[0] != wantSNI {
		t.Fatalf("SNI %v, want %s", snis, wantSNI)
	}
	if clients[0] != client.Serial.Text(16) || uris[0] != spiffe("my-function") {
		t.Fatalf("gateway saw client %v %v", clients, uris)
	}
	waitFor(t, func() bool { return f.stats.BytesIn.Load() == 10 && f.stats.BytesOut.Load() == 10 })
	if f.stats.Connections.Load() != 1 || f.stats.HandshakeFailures.Load() != 0 {
		t.Fatalf("stats %v", f.stats.Fields())
	}
}

func TestProxyRejectsWrongSpiffeID(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	f := newProxyFixture(t, ca, ca.FreshLeaf(t, spiffe("my-function")), ca.FreshLeaf(t, spiffe("impostor")))
	got, _ := meshtest.RoundTrip(t, f.addr, "secret")
	if got != "" {
		t.Fatalf("data came back through a rejected peer: %q", got)
	}
	waitFor(t, func() bool { return f.stats.HandshakeFailures.Load() == 1 })
	if !strings.Contains(f.logs.String(), "upstream identity rejected") ||
		!strings.Contains(f.logs.String(), spiffe("impostor")) {
		t.Fatalf("log does not explain the rejection:\n%s", f.logs.String())
	}
}

func TestProxyRejectsUnknownCA(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	rogue := meshtest.NewCA(t, "rogue-ca")
	// Right SPIFFE ID, wrong issuer.
	f := newProxyFixture(t, ca, ca.FreshLeaf(t, spiffe("my-function")), rogue.FreshLeaf(t, spiffe("feature-store")))
	got, _ := meshtest.RoundTrip(t, f.addr, "secret")
	if got != "" {
		t.Fatalf("data came back through an untrusted peer: %q", got)
	}
	waitFor(t, func() bool { return f.stats.HandshakeFailures.Load() == 1 })
	if !strings.Contains(f.logs.String(), "does not chain to the mesh CA") {
		t.Fatalf("log does not explain the rejection:\n%s", f.logs.String())
	}
}

func TestProxyGatewayDownIsADialFailure(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	stats := &Stats{}
	cfg := &config.Config{
		Gateway: "127.0.0.1:" + strconv.Itoa(meshtest.FreePort(t)), Namespace: meshtest.Namespace,
		Datacenter: meshtest.Datacenter, Upstreams: []config.Upstream{{Service: "feature-store"}},
		DialTimeout: time.Second,
	}
	raw := meshtest.BundleJSON(t, ca.FreshLeaf(t, meshtest.SpiffeID("my-function")), ca.PEM)
	p := startProxy(t, cfg, &meshtest.SyncBuffer{}, stats, raw)
	if got, _ := meshtest.RoundTrip(t, p.Addrs()[0].String(), "x"); got != "" {
		t.Fatal("unexpected data")
	}
	waitFor(t, func() bool { return stats.DialFailures.Load() == 1 })
}

func TestProxyCloseClosesListeners(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	f := newProxyFixture(t, ca, ca.FreshLeaf(t, spiffe("my-function")), ca.FreshLeaf(t, spiffe("feature-store")))
	// An open connection, mid-stream.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	f.proxy.Close()
	if c2, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("listener still accepting after Close")
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("open connection survived Close")
	}
}

func TestRefreshSwapsCertificateWhileARequestSucceeds(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	// Past half of its lifetime: due for refresh.
	old := ca.Leaf(t, spiffe("my-function"), time.Now().Add(-50*time.Minute), time.Now().Add(10*time.Minute))
	f := newProxyFixture(t, ca, old, ca.FreshLeaf(t, spiffe("feature-store")))
	next := ca.FreshLeaf(t, spiffe("my-function"))

	// A request in flight across the swap.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 6)
	if _, err := c.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := readFull(c, buf); err != nil || string(buf) != "before" {
		t.Fatalf("before: %q %v", buf, err)
	}

	release := make(chan struct{})
	fetch := func(ctx context.Context) (*bundle.Identity, error) {
		<-release // a slow SSM: Check must not block on it
		return bundle.Parse([]byte(meshtest.BundleJSON(t, next, ca.PEM)), time.Now())
	}
	r := NewRefresher(f.proxy, fetch, jsonlog.New(f.logs), f.stats, time.Minute)
	start := time.Now()
	running := r.Check("timer")
	if running == nil {
		t.Fatal("refresh not started although past half-life")
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("Check blocked")
	}
	if again := r.Check("timer"); again != running {
		t.Fatal("second refresh started while one is in flight")
	}
	// While the refresh is pending, new requests use the old (still valid) certificate.
	if got, err := meshtest.RoundTrip(t, f.addr, "during"); err != nil || got != "during" {
		t.Fatalf("during: %q %v", got, err)
	}
	close(release)
	r.Wait()
	if f.proxy.Identity().Serial() != next.Serial.Text(16) {
		t.Fatal("identity not swapped")
	}
	// The connection opened before the swap still works.
	if _, err := c.Write([]byte("after!")); err != nil {
		t.Fatal(err)
	}
	if _, err := readFull(c, buf); err != nil || string(buf) != "after!" {
		t.Fatalf("after: %q %v", buf, err)
	}
	// New connections present the new leaf.
	if got, err := meshtest.RoundTrip(t, f.addr, "new"); err != nil || got != "new" {
		t.Fatalf("new: %q %v", got, err)
	}
	_, clients, _ := f.gw.Seen()
	if clients[0] != old.Serial.Text(16) || clients[len(clients)-1] != next.Serial.Text(16) {
		t.Fatalf("client serials seen by the gateway: %v (old %s, new %s)", clients, old.Serial.Text(16),
			next.Serial.Text(16))
	}
	if f.stats.Refreshes.Load() != 1 {
		t.Fatalf("refreshes = %d", f.stats.Refreshes.Load())
	}
	// Fresh certificate: nothing more to do.
	if r.Check("timer") != nil {
		t.Fatal("refresh started for a fresh certificate")
	}
}

func TestVerifyPeerRequiresExactlyOneURISAN(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	l := ca.FreshLeaf(t, spiffe("feature-store"))
	id, err := bundle.Parse([]byte(meshtest.BundleJSON(t, l, ca.PEM)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyPeer([]*x509.Certificate{id.Leaf}, id.Roots, spiffe("feature-store"), time.Now()); err != nil {
		t.Fatalf("valid peer rejected: %v", err)
	}
	id.Leaf.URIs = append(id.Leaf.URIs, meshtest.MustURL(spiffe("feature-store")))
	if err := verifyPeer([]*x509.Certificate{id.Leaf}, id.Roots, spiffe("feature-store"), time.Now()); err == nil {
		t.Fatal("two URI SANs accepted")
	}
	if err := verifyPeer(nil, id.Roots, spiffe("feature-store"), time.Now()); err == nil {
		t.Fatal("no certificate accepted")
	}
}

// spiffe is the SPIFFE ID of svc in the test mesh.
func spiffe(svc string) string { return meshtest.SpiffeID(svc) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A connection that finds the leaf expired (the environment was frozen past its end) waits for the refresh it
// starts and presents the new leaf; the peer would refuse the expired one.
func TestExpiredCertificateConnectionWaitsForTheRefresh(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	old := ca.Leaf(t, spiffe("my-function"), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	f := newProxyFixture(t, ca, old, ca.FreshLeaf(t, spiffe("feature-store")))
	next := ca.FreshLeaf(t, spiffe("my-function"))
	// The proxy's clock is past the old leaf's end; the gateway's is not, so only the proxy's own check can refuse it.
	oldEnd := f.proxy.Identity().Leaf.NotAfter
	later := func() time.Time { return oldEnd.Add(time.Minute) }
	f.proxy.now = later
	var fetches atomic.Int32
	r := NewRefresher(f.proxy, func(ctx context.Context) (*bundle.Identity, error) {
		fetches.Add(1)
		time.Sleep(100 * time.Millisecond) // the refresh is in flight when the connection arrives
		return bundle.Parse([]byte(meshtest.BundleJSON(t, next, ca.PEM)), later())
	}, jsonlog.New(f.logs), f.stats, time.Hour)
	r.now = later
	f.proxy.SetRefresh(r.Check)

	if got, err := meshtest.RoundTrip(t, f.addr, "hello"); err != nil || got != "hello" {
		t.Fatalf("%q %v; logs:\n%s", got, err, f.logs.String())
	}
	r.Wait()
	_, clients, _ := f.gw.Seen()
	if len(clients) != 1 || clients[0] != next.Serial.Text(16) || fetches.Load() != 1 {
		t.Fatalf("client serials %v (want only the new %s), fetches %d", clients, next.Serial.Text(16), fetches.Load())
	}
	if !strings.Contains(f.logs.String(), `"msg":"connection waited for the certificate refresh"`) {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
}

func TestExpiredCertificateWithoutAFreshOneClosesTheConnection(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	old := ca.FreshLeaf(t, spiffe("my-function"))
	f := newProxyFixture(t, ca, old, ca.FreshLeaf(t, spiffe("feature-store")))
	oldEnd := f.proxy.Identity().Leaf.NotAfter
	later := func() time.Time { return oldEnd.Add(time.Minute) }
	f.proxy.now = later
	r := NewRefresher(f.proxy, func(ctx context.Context) (*bundle.Identity, error) {
		return nil, &ssm.Error{Parameter: "/p", Status: 503}
	}, jsonlog.New(f.logs), f.stats, time.Hour)
	r.now = later
	f.proxy.SetRefresh(r.Check)

	if got, _ := meshtest.RoundTrip(t, f.addr, "hello"); got != "" {
		t.Fatalf("got %q through an expired identity", got)
	}
	r.Wait()
	if _, clients, _ := f.gw.Seen(); len(clients) != 0 || f.stats.ExpiredRejects.Load() != 1 {
		t.Fatalf("gateway saw %v; expiredRejects %d", clients, f.stats.ExpiredRejects.Load())
	}
	if !strings.Contains(f.logs.String(), "certificate expired and no fresh one could be loaded") {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
}

// After an attempt that changed nothing, connections do not start another one before the backoff, unless the leaf
// has expired by then.
func TestRefreshBackoffUnlessExpired(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	leaf := ca.Leaf(t, spiffe("my-function"), time.Now().Add(-50*time.Minute), time.Now().Add(10*time.Minute))
	f := newProxyFixture(t, ca, leaf, ca.FreshLeaf(t, spiffe("feature-store")))
	var fetches atomic.Int32
	r := NewRefresher(f.proxy, func(ctx context.Context) (*bundle.Identity, error) {
		fetches.Add(1)
		return bundle.Parse([]byte(meshtest.BundleJSON(t, leaf, ca.PEM)), time.Now())
	}, jsonlog.New(f.logs), f.stats, time.Hour)
	if r.Check("connection") == nil {
		t.Fatal("refresh not started although past half-life")
	}
	r.Wait()
	if r.Check("connection") != nil || fetches.Load() != 1 {
		t.Fatalf("second attempt within the backoff (fetches %d)", fetches.Load())
	}
	if !strings.Contains(f.logs.String(), "the parameter still holds the current certificate") {
		t.Fatalf("logs:\n%s", f.logs.String())
	}
	end := f.proxy.Identity().Leaf.NotAfter
	r.now = func() time.Time { return end.Add(time.Second) }
	if r.Check("connection") == nil {
		t.Fatal("an expired leaf waited for the backoff")
	}
	r.Wait()
	if fetches.Load() != 2 {
		t.Fatalf("fetches %d", fetches.Load())
	}
}
