package config

import (
	"bytes"
	_ "embed" // for env.json
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
)

// envJSON names the extension's own environment variables. The construct that sets them
// (constructs/function/private/wiring.ts) imports the same file, so the two sides cannot name them differently.
//
//go:embed env.json
var envJSON []byte

// EnvNames are the names of the extension's own environment variables, as env.json lists them.
type EnvNames struct {
	Comment []string `json:"$comment"` // for readers of env.json; not a variable

	IdentityParameter string `json:"identityParameter"` // the SSM parameter holding the identity bundle
	Upstreams         string `json:"upstreams"`         // JSON: [{"service","localPort"}]
	Gateway           string `json:"gateway"`           // host:port of the mesh gateway
	Datacenter        string `json:"datacenter"`        // Consul datacenter, part of the SNI and SPIFFE IDs
	Namespace         string `json:"namespace"`         // Consul namespace (default "default")
	InitTimeoutMs     string `json:"initTimeoutMs"`     // budget of the init phase
	SSMEndpoint       string `json:"ssmEndpoint"`       // default https://ssm.<region>.amazonaws.com
	RefreshCheckMs    string `json:"refreshCheckMs"`    // timer of the certificate refresh check
	StatsIntervalMs   string `json:"statsIntervalMs"`   // period of the stats log line
	DialTimeoutMs     string `json:"dialTimeoutMs"`     // dial and handshake budget per connection
}

// Env holds the names from env.json. A broken env.json panics when the process starts: the tests of every
// package that imports config fail on it, before a binary with it can ship.
var Env = mustParseEnvNames(envJSON)

// The prefix MeshFunction refuses in user-given environments, so nothing overrides what it sets.
var envNameRE = regexp.MustCompile(`^LAMBDA_MESH_[A-Z0-9_]+$`)

func mustParseEnvNames(raw []byte) EnvNames {
	names, err := parseEnvNames(raw)
	if err != nil {
		panic(err)
	}
	return names
}

// parseEnvNames decodes env.json: every variable given, no unknown key, each name LAMBDA_MESH_* and used once.
func parseEnvNames(raw []byte) (EnvNames, error) {
	var names EnvNames
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&names); err != nil {
		return EnvNames{}, fmt.Errorf("env.json: %v", err)
	}
	seen := map[string]string{}
	for _, v := range names.variables() {
		key, name := v[0], v[1]
		if name == "" {
			return EnvNames{}, fmt.Errorf("env.json: %s is missing", key)
		}
		if !envNameRE.MatchString(name) {
			return EnvNames{}, fmt.Errorf("env.json: %s must be a LAMBDA_MESH_* variable name, got %q", key, name)
		}
		if prev, dup := seen[name]; dup {
			return EnvNames{}, fmt.Errorf("env.json: %s and %s both name %s", prev, key, name)
		}
		seen[name] = key
	}
	return names, nil
}

// variables returns every variable as {env.json key, name}, in the order of EnvNames.
func (n EnvNames) variables() [][2]string {
	var out [][2]string
	v := reflect.ValueOf(n)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Type().Field(i); f.Name != "Comment" {
			out = append(out, [2]string{f.Tag.Get("json"), v.Field(i).String()})
		}
	}
	return out
}
