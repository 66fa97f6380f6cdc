// Package config reads the extension's configuration from its environment: the variables the MeshFunction
// construct sets (named in env.json, see Env) and those Lambda sets (region, role credentials, runtime API).
package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/sigv4"
)

// EnvRuntimeAPI is the host:port of the Lambda Runtime and Extensions APIs, set by Lambda.
const EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

// DefaultDialTimeout bounds the dial and TLS handshake of one connection to the mesh gateway.
const DefaultDialTimeout = 5 * time.Second

const (
	defaultNamespace     = "default"
	defaultInitTimeout   = 2000 * time.Millisecond
	defaultRefreshCheck  = 60 * time.Second
	defaultStatsInterval = 60 * time.Second
)

// Upstream is one entry of LAMBDA_MESH_UPSTREAMS.
type Upstream struct {
	Service   string `json:"service"`
	LocalPort int    `json:"localPort"`
}

// Config is everything the extension reads from its environment.
type Config struct {
	IdentityParameter string
	Upstreams         []Upstream
	Gateway           string
	Namespace         string
	Datacenter        string
	InitTimeout       time.Duration
	RefreshCheck      time.Duration
	StatsInterval     time.Duration
	DialTimeout       time.Duration

	Region      string
	Credentials sigv4.Credentials
	SSMEndpoint string
}

// Error lists every problem found in the environment, so one failed cold start shows all of them.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// A Consul service name as it appears in an SNI label: DNS-label characters only.
var serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Load parses the environment through getenv (os.Getenv in production).
func Load(getenv func(string) string) (*Config, error) {
	var problems []string
	bad := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }
	req := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			bad("%s is required", name)
		}
		return v
	}
	ms := func(name string, def time.Duration) time.Duration {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad("%s must be a positive integer number of milliseconds, got %q", name, v)
			return def
		}
		return time.Duration(n) * time.Millisecond
	}

	c := &Config{
		IdentityParameter: req(Env.IdentityParameter),
		Gateway:           req(Env.Gateway),
		Namespace:         strings.TrimSpace(getenv(Env.Namespace)),
		Datacenter:        req(Env.Datacenter),
		InitTimeout:       ms(Env.InitTimeoutMs, defaultInitTimeout),
		RefreshCheck:      ms(Env.RefreshCheckMs, defaultRefreshCheck),
		StatsInterval:     ms(Env.StatsIntervalMs, defaultStatsInterval),
		DialTimeout:       ms(Env.DialTimeoutMs, DefaultDialTimeout),
	}
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if c.Gateway != "" {
		if host, port, err := net.SplitHostPort(c.Gateway); err != nil || host == "" || port == "" {
			bad("%s must be host:port, got %q", Env.Gateway, c.Gateway)
		}
	}
	for _, label := range []struct{ env, v string }{{Env.Namespace, c.Namespace}, {Env.Datacenter, c.Datacenter}} {
		if label.v != "" && !serviceNameRE.MatchString(label.v) {
			bad("%s must be a lowercase DNS label (it is part of the SNI), got %q", label.env, label.v)
		}
	}

	if raw := req(Env.Upstreams); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Upstreams); err != nil {
			bad(`%s must be JSON like [{"service":"feature-store","localPort":8080}]: %v`, Env.Upstreams, err)
		} else if len(c.Upstreams) == 0 {
			bad("%s lists no upstreams", Env.Upstreams)
		}
		ports := map[int]string{}
		for i, u := range c.Upstreams {
			if !serviceNameRE.MatchString(u.Service) {
				bad("%s[%d].service must be a lowercase DNS label, got %q", Env.Upstreams, i, u.Service)
			}
			if u.LocalPort < 1 || u.LocalPort > 65535 {
				bad("%s[%d].localPort must be 1-65535, got %d", Env.Upstreams, i, u.LocalPort)
			} else if prev, dup := ports[u.LocalPort]; dup {
				bad("%s: localPort %d is used by both %q and %q", Env.Upstreams, u.LocalPort, prev, u.Service)
			}
			ports[u.LocalPort] = u.Service
		}
	}

	c.Region = strings.TrimSpace(getenv("AWS_REGION"))
	if c.Region == "" {
		c.Region = strings.TrimSpace(getenv("AWS_DEFAULT_REGION"))
	}
	if c.Region == "" {
		bad("AWS_REGION is required")
	}
	c.Credentials = sigv4.Credentials{
		AccessKeyID:     req("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: req("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    strings.TrimSpace(getenv("AWS_SESSION_TOKEN")),
	}
	c.SSMEndpoint = strings.TrimSpace(getenv(Env.SSMEndpoint))
	if c.SSMEndpoint == "" && c.Region != "" {
		c.SSMEndpoint = "https://ssm." + c.Region + ".amazonaws.com"
	}
	if c.SSMEndpoint != "" {
		if u, err := url.Parse(c.SSMEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("%s must be an http(s) URL, got %q", Env.SSMEndpoint, c.SSMEndpoint)
		}
	}

	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}
