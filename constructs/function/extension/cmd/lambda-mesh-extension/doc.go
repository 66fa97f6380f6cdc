// Command lambda-mesh-extension is an AWS Lambda external extension that makes the function a member of a Consul
// service mesh. Installed as /opt/extensions/lambda-mesh (Lambda registers it under that file name), it:
//
//   - registers with the Lambda Extensions API for SHUTDOWN events;
//   - during init, within LAMBDA_MESH_INIT_TIMEOUT_MS, reads the function's identity bundle (leaf certificate,
//     key, mesh CA roots, trust domain) from SSM Parameter Store, signed with SigV4 and the function's role
//     credentials, and binds 127.0.0.1:<localPort> for each upstream in LAMBDA_MESH_UPSTREAMS, so the model code
//     reaches an upstream on http://127.0.0.1:<port>;
//   - forwards every local connection over mutual TLS to the mesh gateway (LAMBDA_MESH_GATEWAY), with the SNI
//     the gateway routes on, and accepts the peer only if it chains to the mesh CA and presents the upstream's
//     SPIFFE ID;
//   - re-reads the bundle in the background past half of the leaf's lifetime and swaps it in for new
//     connections;
//   - logs JSON lines on stdout, with counters, and closes everything on SHUTDOWN.
//
// Failures during init are reported to Lambda as Extension.<Reason> init errors, so a broken configuration fails
// the cold start with a message instead of failing requests later.
//
// The environment variables it reads are named in internal/config/env.json, which the Go code embeds and the
// CDK construct that sets them (constructs/function/private/wiring.ts) imports.
//
// The extension uses the Go standard library only, on purpose:
//
//   - it is a static binary (CGO_ENABLED=0) inside every mesh function's image or layer, so no third-party module
//     becomes part of each function's supply chain;
//   - the whole proxy, including its TLS peer checks and its SigV4 signing, can be reviewed in this module;
//   - it builds with GOPROXY=off: no module is downloaded at build time (there is no go.sum), so the image build
//     needs nothing but the pinned Go builder image and these sources.
//
// Layout: this command only wires the process (signals, environment, stdout) to internal/lifecycle, which runs
// the extension's lifecycle; the other internal packages are its parts (config, extensionapi, ssm, sigv4,
// bundle, proxy, jsonlog). internal/meshtest holds what the tests share and is not part of the binary.
package main
