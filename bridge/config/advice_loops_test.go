package config

import (
	"strings"
	"testing"
)

// Reply and dead-letter topics that lead records back to the route they
// came from, through other routes, get advice at each key on the loop; a
// route that processes another's dead letters and leads nowhere back gets
// none.
func TestAdviceLoopsBetweenRoutes(t *testing.T) {
	route := func(name, topic, outputs string) string {
		return "  - name: " + name + "\n    topics: [" + topic + "]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n" + outputs
	}
	for _, c := range []struct {
		name   string
		routes string
		want   map[string]string // path -> a part of its advice
	}{
		{"dead letters processed by another route", route("a", "a-in", "    dead_letter: {topic: a-dlq}\n") +
			route("a-dlq", "a-dlq", "    dead_letter: {topic: parked}\n"), nil},
		{"two routes dead-lettering into each other", route("a", "a-in", "    dead_letter: {topic: b-in}\n") +
			route("b", "b-in", "    dead_letter: {topic: a-in}\n"), map[string]string{
			"routes[0].dead_letter.topic": `"b-in" is a topic of route "b", and records come back from there to this route by route "b"'s dead_letter.topic "a-in": a record that fails on every route of the loop is dead-lettered around it forever`,
			"routes[1].dead_letter.topic": `"a-in" is a topic of route "a", and records come back from there to this route by route "a"'s dead_letter.topic "b-in"`,
		}},
		{"a reply that comes back as a dead letter, through a third route", route("a", "a-in", "    reply: {topic: b-in}\n    dead_letter: {topic: parked}\n") +
			route("b", "b-in", "    reply: {topic: c-in}\n") + route("c", "c-in", "    dead_letter: {topic: a-in}\n"), map[string]string{
			"routes[0].reply.topic":       `records come back from there to this route by route "b"'s reply.topic "c-in", then route "c"'s dead_letter.topic "a-in": records can go around it forever`,
			"routes[1].reply.topic":       `by route "c"'s dead_letter.topic "a-in", then route "a"'s reply.topic "b-in"`,
			"routes[2].dead_letter.topic": `by route "a"'s reply.topic "b-in", then route "b"'s reply.topic "c-in"`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n"+c.routes, nil)
			got := map[string]string{}
			for _, a := range cfg.Advice {
				got[a.Path] = a.Message
			}
			if len(got) != len(c.want) {
				t.Fatalf("advice %q, want it at %d keys", cfg.Advice, len(c.want))
			}
			for path, part := range c.want {
				if !strings.Contains(got[path], part) {
					t.Errorf("advice at %s is %q, want it to contain %q", path, got[path], part)
				}
			}
		})
	}
}

// A topic from the environment is named by its variable, not shown.
func TestAdviceLoopsHideTopicsFromTheEnvironment(t *testing.T) {
	src := "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n" +
		"  - name: a\n    topics: [a-in]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    dead_letter: {topic: \"${B_TOPIC}\"}\n" +
		"  - name: b\n    topics: [\"${B_TOPIC}\"]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    dead_letter: {topic: a-in}\n"
	cfg := mustParse(t, src, map[string]string{"B_TOPIC": "secret-topic"})
	if len(cfg.Advice) != 2 {
		t.Fatalf("advice %q, want two", cfg.Advice)
	}
	for _, a := range cfg.Advice {
		if strings.Contains(a.Message, "secret-topic") {
			t.Errorf("advice %q shows a value from the environment", a)
		}
	}
	if !strings.Contains(cfg.Advice[0].Message, "(from ${B_TOPIC}) is a topic of route") {
		t.Errorf("advice %q does not name the variable", cfg.Advice[0])
	}
}

// A route name from the environment is named by its variable in loop
// advice, as in every other message, and never shown.
func TestAdviceLoopsHideRouteNamesFromTheEnvironment(t *testing.T) {
	src := "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n" +
		"  - name: \"${A_NAME}\"\n    topics: [a-in]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    dead_letter: {topic: b-in}\n" +
		"  - name: \"${B_NAME}\"\n    topics: [b-in]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    dead_letter: {topic: a-in}\n"
	cfg := mustParse(t, src, map[string]string{"A_NAME": "secret-a", "B_NAME": "secret-b"})
	if len(cfg.Advice) != 2 {
		t.Fatalf("advice %q, want two", cfg.Advice)
	}
	for _, a := range cfg.Advice {
		if strings.Contains(a.Message, "secret-") {
			t.Errorf("advice %q shows a value from the environment", a)
		}
	}
	want := map[string]string{
		"routes[0].dead_letter.topic": `"b-in" is a topic of route (from ${B_NAME}), and records come back from there to this route by route (from ${B_NAME})'s dead_letter.topic "a-in"`,
		"routes[1].dead_letter.topic": `"a-in" is a topic of route (from ${A_NAME}), and records come back from there to this route by route (from ${A_NAME})'s dead_letter.topic "b-in"`,
	}
	for _, a := range cfg.Advice {
		if !strings.Contains(a.Message, want[a.Path]) {
			t.Errorf("advice at %s is %q, want it to contain %q", a.Path, a.Message, want[a.Path])
		}
	}
}

// A loop of replies only dead-letters nothing into it: its advice speaks of
// answers going round, not of dead letters.
func TestAdviceLoopsOfRepliesOnly(t *testing.T) {
	src := "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n" +
		"  - name: a\n    topics: [a-in]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    reply: {topic: b-in}\n    dead_letter: {topic: a-dlq}\n" +
		"  - name: b\n    topics: [b-in]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n    reply: {topic: a-in}\n"
	cfg := mustParse(t, src, nil)
	if len(cfg.Advice) != 2 {
		t.Fatalf("advice %q, want two", cfg.Advice)
	}
	for _, a := range cfg.Advice {
		if !strings.Contains(a.Message, "a handler's reply is a new record for the next route") {
			t.Errorf("advice at %s is %q, want it to say that replies go round", a.Path, a.Message)
		}
		if strings.Contains(a.Message, "dead-lettered") {
			t.Errorf("advice at %s is %q: nothing on a loop of replies is dead-lettered into it", a.Path, a.Message)
		}
	}
}
