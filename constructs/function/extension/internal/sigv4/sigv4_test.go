package sigv4

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// AWS Signature Version 4 test suite (aws-sig-v4-test-suite): credentials, scope and date shared by every case.
var (
	suiteCreds = Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	suiteTime  = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
)

func TestSigV4GetVanillaCanonicalForm(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://example.amazonaws.com/", nil)
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	creq, signed := canonicalRequest(req, emptyPayloadSHA)
	want := "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + emptyPayloadSHA
	if creq != want {
		t.Fatalf("canonical request:\n%q\nwant\n%q", creq, want)
	}
	if signed != "host;x-amz-date" {
		t.Fatalf("signed headers %q", signed)
	}
	sts := stringToSign("20150830T123600Z", credentialScope("20150830", "us-east-1", "service"), creq)
	wantSTS := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
		"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
	if sts != wantSTS {
		t.Fatalf("string to sign:\n%q\nwant\n%q", sts, wantSTS)
	}
}

func TestSigV4TestSuiteVectors(t *testing.T) {
	for _, c := range []struct {
		name, method, url, sig string
	}{
		{"get-vanilla", "GET", "https://example.amazonaws.com/",
			"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"post-vanilla", "POST", "https://example.amazonaws.com/",
			"5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1",
			"b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, nil)
			Sign(req, nil, suiteCreds, "us-east-1", "service", suiteTime)
			want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
				"SignedHeaders=host;x-amz-date, Signature=" + c.sig
			if got := req.Header.Get("Authorization"); got != want {
				t.Fatalf("Authorization\n got %s\nwant %s", got, want)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
				t.Fatalf("X-Amz-Date %q", got)
			}
		})
	}
}

func TestSigV4SessionTokenAndHeadersAreSigned(t *testing.T) {
	req, _ := http.NewRequest("POST", "https://ssm.eu-west-1.amazonaws.com/", nil)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	creds := suiteCreds
	creds.SessionToken = "token"
	Sign(req, []byte(`{}`), creds, "eu-west-1", "ssm", suiteTime)
	auth := req.Header.Get("Authorization")
	if !strings.Contains(auth, "Credential=AKIDEXAMPLE/20150830/eu-west-1/ssm/aws4_request") ||
		!strings.Contains(auth, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,") {
		t.Fatalf("Authorization %s", auth)
	}
	if req.Header.Get("X-Amz-Security-Token") != "token" {
		t.Fatal("session token header missing")
	}
	// Deterministic, and sensitive to the body.
	again, _ := http.NewRequest("POST", "https://ssm.eu-west-1.amazonaws.com/", nil)
	again.Header.Set("Content-Type", "application/x-amz-json-1.1")
	again.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	Sign(again, []byte(`{}`), creds, "eu-west-1", "ssm", suiteTime)
	if again.Header.Get("Authorization") != auth {
		t.Fatal("signature not deterministic")
	}
	other, _ := http.NewRequest("POST", "https://ssm.eu-west-1.amazonaws.com/", nil)
	other.Header.Set("Content-Type", "application/x-amz-json-1.1")
	other.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	Sign(other, []byte(`{"x":1}`), creds, "eu-west-1", "ssm", suiteTime)
	if other.Header.Get("Authorization") == auth {
		t.Fatal("body is not covered by the signature")
	}
}
