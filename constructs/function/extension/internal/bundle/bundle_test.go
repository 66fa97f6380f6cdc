package bundle_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/bundle"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/meshtest"
)

func TestParseBundle(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	l := ca.Leaf(t, meshtest.SpiffeID("fn"), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	raw := meshtest.BundleJSON(t, l, ca.PEM+"\n"+meshtest.NewCA(t, "second-root").PEM)
	id, err := bundle.Parse([]byte(raw), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.TrustDomain != meshtest.TrustDomain || id.Serial() != l.Serial.Text(16) {
		t.Fatalf("identity %+v", id)
	}
	if !id.NeedsRefresh(time.Now().Add(time.Second)) || id.NeedsRefresh(time.Now().Add(-30*time.Minute)) {
		t.Fatal("half-life refresh threshold wrong")
	}

	other := ca.FreshLeaf(t, meshtest.SpiffeID("fn"))
	expired := ca.Leaf(t, meshtest.SpiffeID("fn"), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	valid := meshtest.BundleJSON(t, l, ca.PEM)
	for name, c := range map[string]struct{ raw, want string }{
		"not json":     {"nope", "not JSON"},
		"missing":      {`{"certPEM":"x"}`, "missing [privateKeyPEM rootCertPEM trustDomain]"},
		"key mismatch": {strings.Replace(valid, jsonStr(l.KeyPEM), jsonStr(other.KeyPEM), 1), "certPEM/privateKeyPEM"},
		"no roots":     {strings.Replace(valid, jsonStr(ca.PEM), "junk", 1), "rootCertPEM holds no certificate"},
		"expired leaf": {meshtest.BundleJSON(t, expired, ca.PEM), "expired"},
	} {
		_, err := bundle.Parse([]byte(c.raw), time.Now())
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
