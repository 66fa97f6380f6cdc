// Package bundle parses the identity bundle the registrar stores in SSM into the certificates the proxy presents
// and trusts.
package bundle

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"
)

// wire is the identity parameter the registrar writes to SSM (constructs/intentions/private/registrar-handler).
type wire struct {
	PrivateKeyPEM string `json:"privateKeyPEM"`
	CertPEM       string `json:"certPEM"`
	RootCertPEM   string `json:"rootCertPEM"`
	TrustDomain   string `json:"trustDomain"`
	Peers         []Peer `json:"peers"`
}

// Peer is a cluster peering entry of the bundle (not used by the proxy yet).
type Peer struct {
	Name        string `json:"name"`
	TrustDomain string `json:"trustDomain"`
}

// Identity is a parsed bundle: what the proxy needs to dial the mesh. Immutable once built; swapped atomically.
type Identity struct {
	Cert        tls.Certificate   // leaf (+ any intermediates) with its key
	Leaf        *x509.Certificate // Cert's leaf, parsed
	Roots       *x509.CertPool    // mesh CA roots from rootCertPEM
	TrustDomain string
	Peers       []Peer
}

// Error is a bundle that cannot be used. Its message never contains key material.
type Error struct{ Reason string }

func (e *Error) Error() string { return "identity bundle: " + e.Reason }

// Parse validates and parses the parameter value.
func Parse(raw []byte, now time.Time) (*Identity, error) {
	var b wire
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, &Error{fmt.Sprintf("not JSON of the expected shape: %v", err)}
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"privateKeyPEM", b.PrivateKeyPEM}, {"certPEM", b.CertPEM}, {"rootCertPEM", b.RootCertPEM},
		{"trustDomain", b.TrustDomain},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, &Error{fmt.Sprintf("missing %v", missing)}
	}
	cert, err := tls.X509KeyPair([]byte(b.CertPEM), []byte(b.PrivateKeyPEM))
	if err != nil {
		// The tls package's messages describe the mismatch, not the key.
		return nil, &Error{fmt.Sprintf("certPEM/privateKeyPEM: %v", err)}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, &Error{fmt.Sprintf("certPEM: %v", err)}
	}
	cert.Leaf = leaf
	if now.After(leaf.NotAfter) {
		return nil, &Error{fmt.Sprintf("leaf certificate (serial %s) expired at %s",
			leaf.SerialNumber.Text(16), leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	roots := x509.NewCertPool()
	n := 0
	rest := []byte(b.RootCertPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &Error{fmt.Sprintf("rootCertPEM: %v", err)}
		}
		roots.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, &Error{"rootCertPEM holds no certificate"}
	}
	return &Identity{Cert: cert, Leaf: leaf, Roots: roots, TrustDomain: b.TrustDomain, Peers: b.Peers}, nil
}

// NeedsRefresh reports whether less than half of the leaf's lifetime remains.
func (id *Identity) NeedsRefresh(now time.Time) bool {
	half := id.Leaf.NotBefore.Add(id.Leaf.NotAfter.Sub(id.Leaf.NotBefore) / 2)
	return !now.Before(half)
}

// Expired reports whether the leaf is past its NotAfter (the last instant it is valid).
func (id *Identity) Expired(now time.Time) bool { return now.After(id.Leaf.NotAfter) }

// Serial is the leaf's serial number in hex, for logs.
func (id *Identity) Serial() string { return id.Leaf.SerialNumber.Text(16) }
