package config

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigCollectsEveryProblem(t *testing.T) {
	env := map[string]string{
		Env.Upstreams:     `[{"service":"Feature_Store","localPort":0}]`,
		Env.Gateway:       "no-port",
		Env.InitTimeoutMs: "-5",
	}
	_, err := Load(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"LAMBDA_MESH_IDENTITY_PARAMETER is required", "LAMBDA_MESH_DATACENTER is required",
		"LAMBDA_MESH_GATEWAY must be host:port", "LAMBDA_MESH_UPSTREAMS[0].service",
		"LAMBDA_MESH_UPSTREAMS[0].localPort",
		"LAMBDA_MESH_INIT_TIMEOUT_MS", "AWS_REGION is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	env = map[string]string{
		Env.IdentityParameter: "/p", Env.Upstreams: `[{"service":"a","localPort":1},{"service":"b","localPort":1}]`,
		Env.Gateway: "gw:8443", Env.Datacenter: "dc1",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
	}
	_, err = Load(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "used by both") {
		t.Fatalf("duplicate port: %v", err)
	}
	env[Env.Upstreams] = `[{"service":"a","localPort":8080}]`
	c, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "default" || c.InitTimeout != 2*time.Second ||
		c.SSMEndpoint != "https://ssm.us-east-1.amazonaws.com" {
		t.Fatalf("defaults %+v", c)
	}
}

// The names the extension reads are exactly those of env.json, the file the construct imports: Load asks for
// every one of them and for no other LAMBDA_MESH_* variable.
func TestLoadReadsTheVariablesNamedInEnvJSON(t *testing.T) {
	raw, err := os.ReadFile("env.json")
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]interface{}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	var want []string
	for key, name := range file {
		if key != "$comment" {
			want = append(want, name.(string))
		}
	}
	sort.Strings(want)

	read := map[string]bool{}
	getenv := func(name string) string {
		read[name] = true
		return map[string]string{
			Env.IdentityParameter: "/p", Env.Upstreams: `[{"service":"a","localPort":8080}]`, Env.Gateway: "gw:8443",
			Env.Datacenter: "dc1", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
		}[name]
	}
	if _, err := Load(getenv); err != nil {
		t.Fatal(err)
	}
	var got []string
	for name := range read {
		if strings.HasPrefix(name, "LAMBDA_MESH_") {
			got = append(got, name)
		}
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load reads %v, env.json names %v", got, want)
	}
}

func TestEnvJSONMustNameEveryVariableOnceWithTheReservedPrefix(t *testing.T) {
	valid, err := os.ReadFile("env.json")
	if err != nil {
		t.Fatal(err)
	}
	if names, err := parseEnvNames(valid); err != nil || !reflect.DeepEqual(names, Env) {
		t.Fatalf("env.json: %+v, %v; embedded: %+v", names, err, Env)
	}
	edit := func(f func(m map[string]interface{})) []byte {
		var m map[string]interface{}
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	for name, c := range map[string]struct {
		raw  []byte
		want string
	}{
		"unknown key":    {edit(func(m map[string]interface{}) { m["proxyPort"] = "LAMBDA_MESH_PORT" }), "proxyPort"},
		"missing key":    {edit(func(m map[string]interface{}) { delete(m, "gateway") }), "gateway is missing"},
		"other prefix":   {edit(func(m map[string]interface{}) { m["gateway"] = "MESH_GATEWAY" }), `"MESH_GATEWAY"`},
		"one name twice": {edit(func(m map[string]interface{}) { m["namespace"] = m["datacenter"] }), "both name"},
	} {
		if _, err := parseEnvNames(c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}
