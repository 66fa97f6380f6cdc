// Package ssm reads the identity parameter: SSM Parameter Store's GetParameter over AWS JSON 1.1, SigV4-signed,
// with the AWS SDKs' standard retries.
package ssm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/sigv4"
)

// Client calls SSM Parameter Store's GetParameter over AWS JSON 1.1, signed with SigV4.
type Client struct {
	Endpoint    string // e.g. https://ssm.eu-west-1.amazonaws.com
	Region      string
	Credentials sigv4.Credentials
	HTTP        *http.Client
	Now         func() time.Time
	// Attempts is how many times a call is tried when it fails in a way another try may fix (no response, HTTP 5xx,
	// throttling: many cold starts at once can exceed GetParameter's rate). 0 means DefaultAttempts.
	Attempts int
}

// DefaultAttempts is what the AWS SDKs' standard retry mode tries.
const DefaultAttempts = 3

// ssmRetryBase is the first back-off; it doubles per attempt, with full jitter so that concurrent cold starts spread.
const ssmRetryBase = 25 * time.Millisecond

// Error is a failed GetParameter call.
type Error struct {
	Parameter string
	Status    int    // 0 when the request never got a response
	Type      string // AWS error code, e.g. ParameterNotFound, AccessDeniedException
	Message   string
	Err       error
	Attempts  int
}

// Retryable reports whether another attempt may succeed.
func (e *Error) Retryable() bool {
	return e.Status == 0 || e.Status >= 500 || e.Type == "ThrottlingException" || e.Type == "TooManyRequestsException"
}

func (e *Error) Error() string {
	var s string
	if e.Status == 0 {
		s = fmt.Sprintf("ssm GetParameter %s: %v", e.Parameter, e.Err)
	} else {
		s = fmt.Sprintf("ssm GetParameter %s: HTTP %d", e.Parameter, e.Status)
		if e.Type != "" {
			s += " " + e.Type
		}
		if e.Message != "" {
			s += ": " + e.Message
		} else if e.Err != nil {
			s += ": " + e.Err.Error()
		}
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// GetParameter returns the decrypted value of the named parameter, retrying what may be transient while ctx allows.
// The value is secret: never log it.
func (c *Client) GetParameter(ctx context.Context, name string) (string, error) {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for i := 1; ; i++ {
		v, err := c.getParameterOnce(ctx, name)
		var se *Error
		if !errors.As(err, &se) {
			return v, err
		}
		se.Attempts = i
		if i == attempts || !se.Retryable() {
			return "", se
		}
		t := time.NewTimer(jitter(ssmRetryBase << (i - 1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", se
		case <-t.C:
		}
	}
}

// Go 1.19 does not seed math/rand's global source: without a seed of their own, all cold starts would draw the
// same "random" delays.
var (
	jitterMu   sync.Mutex
	jitterRand = rand.New(rand.NewSource(time.Now().UnixNano()))
)

// jitter returns a random duration in [0, max).
func jitter(max time.Duration) time.Duration {
	jitterMu.Lock()
	defer jitterMu.Unlock()
	return time.Duration(jitterRand.Int63n(int64(max)))
}

func (c *Client) getParameterOnce(ctx context.Context, name string) (string, error) {
	body, _ := json.Marshal(struct {
		Name           string
		WithDecryption bool
	}{name, true})
	url := strings.TrimRight(c.Endpoint, "/") + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", &Error{Parameter: name, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	sigv4.Sign(req, body, c.Credentials, c.Region, "ssm", now())

	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", &Error{Parameter: name, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &Error{Parameter: name, Status: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type     string `json:"__type"`
			Message  string `json:"message"`
			Message2 string `json:"Message"`
		}
		_ = json.Unmarshal(raw, &e)
		if e.Message == "" {
			e.Message = e.Message2
		}
		if i := strings.LastIndex(e.Type, "#"); i >= 0 { // "com.amazonaws...#ParameterNotFound"
			e.Type = e.Type[i+1:]
		}
		return "", &Error{Parameter: name, Status: resp.StatusCode, Type: e.Type, Message: e.Message}
	}
	var out struct {
		Parameter struct {
			Value *string `json:"Value"`
		} `json:"Parameter"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Parameter.Value == nil {
		if err == nil {
			err = fmt.Errorf("response has no Parameter.Value")
		}
		return "", &Error{Parameter: name, Status: resp.StatusCode, Err: fmt.Errorf("malformed response: %v", err)}
	}
	return *out.Parameter.Value, nil
}
