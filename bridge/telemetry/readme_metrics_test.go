package telemetry

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeMetrics reads the metric table of the README's Observability
// section: every metric name it documents, mapped to the text of its row.
// A name written as a suffix (`_stuck` after `hookbridge_partitions_paused`)
// stands for the first name's "hookbridge_<part>_" prefix plus the suffix.
// It also returns the section's text up to the table, which names the
// labels every metric may carry.
func readmeMetrics(t *testing.T) (rows map[string]string, intro string) {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Observability")
	if start < 0 {
		t.Fatal("README has no Observability section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	table := strings.Index(section, "| metric |")
	if table < 0 {
		t.Fatal("README's Observability section has no metric table")
	}
	intro = section[:table]
	rows = map[string]string{}
	name := regexp.MustCompile("`([a-z_]+)`")
	for line := range strings.SplitSeq(section[table:], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		var base string
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			n := m[1]
			switch {
			case strings.HasPrefix(n, "hookbridge_"):
				parts := strings.SplitN(n, "_", 3)
				base = parts[0] + "_" + parts[1]
			case strings.HasPrefix(n, "_") && base != "":
				n = base + n
			default:
				t.Fatalf("README metric table: cannot read %q in row %q", n, line)
			}
			rows[n] = line
		}
	}
	if len(rows) == 0 {
		t.Fatal("README's metric table lists no metric")
	}
	return rows, intro
}

// Every hookbridge_ metric the bridge exports is in the README's metric
// table, with each of its labels named in its row or in the labels the
// section lists; and every metric the table names is exported.
func TestReadmeMetricTableMatchesExported(t *testing.T) {
	documented, intro := readmeMetrics(t)

	m := recordEveryMetric(t)
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	word := func(text, w string) bool {
		return regexp.MustCompile(`\b` + regexp.QuoteMeta(w) + `\b`).MatchString(text)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "hookbridge_") {
			continue
		}
		exported[name] = true
		row, ok := documented[name]
		if !ok {
			t.Errorf("metric %s is exported but not in the README's metric table", name)
			continue
		}
		var labels []string
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		for _, l := range labels {
			if !word(row, l) && !strings.Contains(intro, "`"+l+"`") {
				t.Errorf("metric %s has label %s, which the README names neither in its row nor among the labels", name, l)
			}
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("the README documents metric %s, which the bridge does not export", name)
		}
	}
}
