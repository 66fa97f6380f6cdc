// Package jsonlog writes the extension's logs: one JSON object per line on stdout, which Lambda ships to
// CloudWatch Logs.
package jsonlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Logger writes one JSON object per line: {"level","msg","time",...fields}. Lambda ships stdout to CloudWatch Logs,
// where these lines are queryable with Logs Insights. Never pass key material as a field.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger { return &Logger{w: w, now: time.Now} }

// Info logs at level "info"; kv is alternating keys and values.
func (l *Logger) Info(msg string, kv ...interface{}) { l.log("info", msg, kv) }

// Warn logs at level "warn".
func (l *Logger) Warn(msg string, kv ...interface{}) { l.log("warn", msg, kv) }

// Error logs at level "error".
func (l *Logger) Error(msg string, kv ...interface{}) { l.log("error", msg, kv) }

func (l *Logger) log(level, msg string, kv []interface{}) {
	var b bytes.Buffer
	b.WriteString(`{"level":`)
	writeJSON(&b, level)
	b.WriteString(`,"msg":`)
	writeJSON(&b, msg)
	b.WriteString(`,"time":`)
	writeJSON(&b, l.now().UTC().Format(time.RFC3339Nano))
	for i := 0; i < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		var v interface{} = "(missing)"
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		if s, ok := v.(fmt.Stringer); ok {
			v = s.String()
		}
		b.WriteByte(',')
		writeJSON(&b, key)
		b.WriteByte(':')
		writeJSON(&b, v)
	}
	b.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b.Bytes())
}

func writeJSON(b *bytes.Buffer, v interface{}) {
	out, err := json.Marshal(v)
	if err != nil {
		out, _ = json.Marshal(fmt.Sprint(v))
	}
	b.Write(out)
}
