package main

import (
	"crypto/x509"
	"strconv"
	"strings"
	"testing"
	"time"
)

type x509Cert = x509.Certificate

func itoa(i int) string { return strconv.Itoa(i) }

func TestParseBundle(t *testing.T) {
	ca := newCA(t, "mesh-ca")
	l := ca.leaf(t, spiffe("fn"), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	id, err := ParseBundle([]byte(bundleJSON(t, l, ca.pem+"\n"+newCA(t, "second-root").pem)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.TrustDomain != testTrustDomain || id.Serial() != l.serial.Text(16) {
		t.Fatalf("identity %+v", id)
	}
	if !id.NeedsRefresh(time.Now().Add(time.Second)) || id.NeedsRefresh(time.Now().Add(-30*time.Minute)) {
		t.Fatal("half-life refresh threshold wrong")
	}

	other := ca.freshLeaf(t, spiffe("fn"))
	for name, c := range map[string]struct{ raw, want string }{
		"not json":     {"nope", "not JSON"},
		"missing":      {`{"certPEM":"x"}`, "missing [privateKeyPEM rootCertPEM trustDomain]"},
		"key mismatch": {strings.Replace(bundleJSON(t, l, ca.pem), jsonStr(l.keyPEM), jsonStr(other.keyPEM), 1), "certPEM/privateKeyPEM"},
		"no roots":     {strings.Replace(bundleJSON(t, l, ca.pem), jsonStr(ca.pem), "junk", 1), "rootCertPEM holds no certificate"},
		"expired leaf": {bundleJSON(t, ca.leaf(t, spiffe("fn"), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)), ca.pem), "expired"},
	} {
		_, err := ParseBundle([]byte(c.raw), time.Now())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error leaks key material: %v", name, err)
		}
	}
}

func jsonStr(s string) string {
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}
