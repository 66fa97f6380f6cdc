// Package meshtest holds what the extension's tests share: a Connect CA that issues Consul-like SPIFFE leaves, the
// identity bundle as the registrar writes it, a mesh gateway stand-in in front of an echo upstream, and plain TCP
// and log helpers. It imports nothing of the extension, so it stands in for the other side independently. Only
// tests import it: it is not part of the binary, and the construct leaves it out of what it stages and ships.
package meshtest

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

// The mesh the tests run in.
const (
	TrustDomain = "11111111-2222-3333-4444-555555555555.consul"
	Namespace   = "default"
	Datacenter  = "dc1"
)

// SpiffeID is the SPIFFE ID of svc in the test mesh.
func SpiffeID(svc string) string {
	return "spiffe://" + TrustDomain + "/ns/" + Namespace + "/dc/" + Datacenter + "/svc/" + svc
}

// SNI is the server name a mesh gateway routes svc of the test mesh on.
func SNI(svc string) string {
	return svc + "." + Namespace + "." + Datacenter + ".internal." + TrustDomain
}

// CA is a mesh CA: a self-signed root with the trust domain's SPIFFE ID.
type CA struct {
	PEM    string // the root certificate
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
}

// NewCA makes a new root named name.
func NewCA(t *testing.T, name string) *CA {
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
		URIs:                  []*url.URL{MustURL("spiffe://" + TrustDomain)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return &CA{PEM: certPEM, cert: cert, key: key, serial: 100}
}

// MustURL parses s or panics.
func MustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// Leaf is an issued leaf certificate with its key.
type Leaf struct {
	CertPEM, KeyPEM string
	TLS             tls.Certificate
	Serial          *big.Int
}

// Leaf issues a Consul-like leaf: both server and client auth, one SPIFFE URI SAN.
func (ca *CA) Leaf(t *testing.T, uri string, notBefore, notAfter time.Time) Leaf {
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
		URIs:         []*url.URL{MustURL(uri)},
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
	return Leaf{CertPEM: certPEM, KeyPEM: keyPEM, TLS: pair, Serial: serial}
}

// FreshLeaf issues a leaf valid from a minute ago for 72 hours, Consul's default lifetime.
func (ca *CA) FreshLeaf(t *testing.T, uri string) Leaf {
	return ca.Leaf(t, uri, time.Now().Add(-time.Minute), time.Now().Add(72*time.Hour))
}

// BundleJSON is the identity parameter's value for l, as the registrar serializes it
// (constructs/intentions/private/registrar-handler), with the trust domain of the test mesh.
func BundleJSON(t *testing.T, l Leaf, rootPEM string) string {
	t.Helper()
	type peer struct {
		Name        string `json:"name"`
		TrustDomain string `json:"trustDomain"`
	}
	b, err := json.Marshal(struct {
		PrivateKeyPEM string `json:"privateKeyPEM"`
		CertPEM       string `json:"certPEM"`
		RootCertPEM   string `json:"rootCertPEM"`
		TrustDomain   string `json:"trustDomain"`
		Peers         []peer `json:"peers"`
	}{l.KeyPEM, l.CertPEM, rootPEM, TrustDomain, []peer{}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// StartEcho runs a TCP server that sends back what it receives; it returns its address.
func StartEcho(t *testing.T) string {
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

// Gateway stands in for a mesh gateway plus the upstream's sidecar: it terminates mTLS with serverCert,
// requires a client certificate from clientCA, checks the SNI, and forwards to an echo server.
type Gateway struct {
	Addr string
	mu   sync.Mutex
	snis []string
	// serials of the client certificates seen
	clients []string
	uris    []string
}

// StartGateway runs a Gateway that forwards connections for wantSNI to upstream and closes the others.
func StartGateway(t *testing.T, serverCert tls.Certificate, clientCA *CA, wantSNI, upstream string) *Gateway {
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
	g := &Gateway{Addr: ln.Addr().String()}
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

// Seen returns the SNIs, client certificate serials (hex) and client URI SANs of the handshakes so far.
func (g *Gateway) Seen() (snis, clients, uris []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.snis...), append([]string(nil), g.clients...),
		append([]string(nil), g.uris...)
}

// RoundTrip writes msg on a fresh plain TCP connection to addr and returns what comes back before EOF.
func RoundTrip(t *testing.T, addr, msg string) (string, error) {
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

// SyncBuffer is a log sink safe for concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines parses the JSON log lines.
func (s *SyncBuffer) Lines(t *testing.T) []map[string]interface{} {
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

// FreePort is a TCP port of 127.0.0.1 that the OS says is free now.
func FreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
