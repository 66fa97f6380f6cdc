package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testTrustDomain = "11111111-2222-3333-4444-555555555555.consul"
	testNS          = "default"
	testDC          = "dc1"
)

func spiffe(svc string) string {
	return "spiffe://" + testTrustDomain + "/ns/" + testNS + "/dc/" + testDC + "/svc/" + svc
}

type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    string
	serial int64
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{mustURL("spiffe://" + testTrustDomain)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), serial: 100}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

type testLeaf struct {
	certPEM, keyPEM string
	tls             tls.Certificate
	serial          *big.Int
}

// leaf issues a Consul-like leaf: both server and client auth, one SPIFFE URI SAN.
func (ca *testCA) leaf(t *testing.T, uri string, notBefore, notAfter time.Time) testLeaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	serial := big.NewInt(ca.serial)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "leaf"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{mustURL(uri)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return testLeaf{certPEM: certPEM, keyPEM: keyPEM, tls: pair, serial: serial}
}

func (ca *testCA) freshLeaf(t *testing.T, uri string) testLeaf {
	return ca.leaf(t, uri, time.Now().Add(-time.Minute), time.Now().Add(72*time.Hour))
}

func bundleJSON(t *testing.T, l testLeaf, rootPEM string) string {
	t.Helper()
	b, err := json.Marshal(Bundle{PrivateKeyPEM: l.keyPEM, CertPEM: l.certPEM, RootCertPEM: rootPEM, TrustDomain: testTrustDomain, Peers: []Peer{}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// testGateway stands in for a mesh gateway plus the upstream's sidecar: it terminates mTLS with serverCert,
// requires a client certificate from clientCA, checks the SNI, and forwards to an echo server.
type testGateway struct {
	addr string
	mu   sync.Mutex
	snis []string
	// serials of the client certificates seen
	clients []string
	uris    []string
}

func startGateway(t *testing.T, serverCert tls.Certificate, clientCA *testCA, wantSNI, upstream string) *testGateway {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	g := &testGateway{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				cs := tc.ConnectionState()
				g.mu.Lock()
				g.snis = append(g.snis, cs.ServerName)
				g.clients = append(g.clients, cs.PeerCertificates[0].SerialNumber.Text(16))
				g.uris = append(g.uris, cs.PeerCertificates[0].URIs[0].String())
				g.mu.Unlock()
				if cs.ServerName != wantSNI {
					return
				}
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, tc); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(tc, up)
			}()
		}
	}()
	return g
}

func (g *testGateway) seen() (snis, clients, uris []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.snis...), append([]string(nil), g.clients...), append([]string(nil), g.uris...)
}

// roundTrip writes msg on a fresh plain TCP connection to addr and returns what comes back before EOF.
func roundTrip(t *testing.T, addr, msg string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines parses the JSON log lines.
func (s *syncBuffer) lines(t *testing.T) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]interface{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
