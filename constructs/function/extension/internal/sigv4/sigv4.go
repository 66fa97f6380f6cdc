// Package sigv4 signs AWS API requests with Signature Version 4, as the extension's SSM calls need.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Credentials are the function's role credentials (the Lambda runtime exports them as environment variables).
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	emptyPayloadSHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Sign adds X-Amz-Date, X-Amz-Security-Token (if any) and Authorization to req, per AWS Signature Version 4.
// Every header already on req, plus host, is signed. payload is the exact request body.
func Sign(req *http.Request, payload []byte, creds Credentials, region, service string, now time.Time) {
	amzDate := now.UTC().Format(amzDateFormat)
	req.Header.Set("X-Amz-Date", amzDate)
	if creds.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	canonical, signedHeaders := canonicalRequest(req, hashHex(payload))
	scope := credentialScope(amzDate[:8], region, service)
	sts := stringToSign(amzDate, scope, canonical)
	key := signingKey(creds.SecretAccessKey, amzDate[:8], region, service)
	signature := hex.EncodeToString(hmacSHA256(key, []byte(sts)))
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		sigV4Algorithm, creds.AccessKeyID, scope, signedHeaders, signature))
}

func credentialScope(date, region, service string) string {
	return date + "/" + region + "/" + service + "/aws4_request"
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hashHex([]byte(canonicalRequest))
}

// canonicalRequest returns the SigV4 canonical request and the signed-header list.
func canonicalRequest(req *http.Request, payloadHash string) (string, string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string][]string{"host": {host}}
	for name, values := range req.Header {
		lower := strings.ToLower(name)
		if lower == "authorization" || lower == "host" {
			continue
		}
		headers[lower] = append(headers[lower], values...)
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, name := range names {
		vals := make([]string, len(headers[name]))
		for i, v := range headers[name] {
			vals[i] = strings.Join(strings.Fields(v), " ") // trim and collapse runs of spaces
		}
		ch.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	signed := strings.Join(names, ";")

	return strings.Join([]string{
		req.Method,
		canonicalURI(req.URL),
		canonicalQuery(req.URL),
		ch.String(),
		signed,
		payloadHash,
	}, "\n"), signed
}

// canonicalURI URI-encodes each segment of the (decoded) path once, as the SigV4 test suite expects.
func canonicalURI(u *url.URL) string {
	p := u.Path
	if p == "" {
		return "/"
	}
	segments := strings.Split(p, "/")
	for i, s := range segments {
		segments[i] = uriEncode(s)
	}
	return strings.Join(segments, "/")
}

func canonicalQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		pairs = append(pairs, kv{uriEncode(dk), uriEncode(dv)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&")
}

// uriEncode is RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - _ . ~ is encoded, with uppercase hex.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
