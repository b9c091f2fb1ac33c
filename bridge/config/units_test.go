package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "10B", want: 10},
		{in: "10KB", want: 10_000},
		{in: "1MB", want: 1_000_000},
		{in: "2GB", want: 2_000_000_000},
		{in: "512KiB", want: 512 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "64 MiB", want: 64 << 20},
		{in: "1.5KiB", want: 1536},
		{in: "0.5MB", want: 500_000},
		{in: "-1", want: -1},
		{in: "8EiB", err: `unknown unit "EiB"`},
		{in: "64mib", err: `unknown unit "mib"`},
		{in: "64M", err: `unknown unit "M"`},
		{in: "1.5B", err: "not a whole number of bytes"},
		{in: "99999999999GiB", err: "too large"},
		{in: "lots", err: `invalid size "lots"`},
		{in: "1e6", err: `invalid size "1e6"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got ByteSize
			err := yaml.Unmarshal([]byte("'"+tt.in+"'"), &got)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ByteSize %q: error %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ByteSize %q = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1500, "1500B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{512 << 10, "512KiB"},
		{1 << 20, "1MiB"},
		{64 << 20, "64MiB"},
		{3 << 30, "3GiB"},
		{2_000_000, "2MB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := parseByteSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("parse(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "0", want: 0},
		{in: "10s", want: 10 * time.Second},
		{in: "200ms", want: 200 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1h", want: time.Hour},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "-1s", want: -time.Second},
		{in: "10", err: `invalid duration "10"`},
		{in: "ten seconds", err: `invalid duration "ten seconds"`},
		{in: "1d", err: `invalid duration "1d"`},
		{in: "1e9s", err: `invalid duration "1e9s": want a number with a unit`},
		{in: "2562047h47m16s", want: 2562047*time.Hour + 47*time.Minute + 16*time.Second},
		{in: "2562047h47m17s", err: `invalid duration "2562047h47m17s": too large: at most 2562047h47m16s`},
		{in: "9999999999h", err: `invalid duration "9999999999h": too large`},
		{in: "-9999999999.5h", err: `invalid duration "-9999999999.5h": too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Duration
			err := yaml.Unmarshal([]byte(tt.in), &got)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Duration %q: error %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got.D() != tt.want {
				t.Fatalf("Duration %q = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   Duration
		want string
	}{
		{0, "0s"},
		{Duration(200 * time.Millisecond), "200ms"},
		{Duration(90 * time.Second), "1m30s"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestUnitsRoundTrip(t *testing.T) {
	type units struct {
		D Duration `yaml:"d"`
		B ByteSize `yaml:"b"`
	}
	in := units{D: Duration(90 * time.Second), B: 64 << 20}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d: 1m30s\nb: 64MiB\n"; string(out) != want {
		t.Errorf("Marshal = %q, want %q", out, want)
	}
	var back units
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Errorf("Unmarshal(Marshal) = %+v, %v; want %+v", back, err, in)
	}
}
