package receiver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A null value (a tombstone: a delete, in a compacted topic) and an empty
// value both make an empty body, in single-record and in batch mode; the
// receiver must still tell them apart, as Kafka does.
func TestContractTombstoneVersusEmptyValue(t *testing.T) {
	json := []target.Header{{Key: "content-type", Value: []byte("application/json")}}
	recs := []*target.Record{
		{Topic: "users", Partition: 0, Offset: 1, Key: []byte("u1"), Value: nil},
		{Topic: "users", Partition: 0, Offset: 2, Key: []byte("u2"), Value: []byte{}},
		{Topic: "users", Partition: 0, Offset: 3, Key: []byte("u3"), Value: nil, Headers: json},
		{Topic: "users", Partition: 0, Offset: 4, Key: []byte("u4"), Value: []byte{}, Headers: json},
		{Topic: "users", Partition: 0, Offset: 5, Key: []byte("u5"), Value: []byte(`{"a":1}`), Headers: json},
	}
	for _, mode := range []struct {
		name  string
		batch config.Batch
	}{{"single", config.Batch{}}, {"batch", config.Batch{MaxMessages: len(recs), MaxWait: config.Duration(time.Minute)}}} {
		t.Run(mode.name, func(t *testing.T) {
			s, srv := newSink(t, []string{newSecret})
			tg := newTarget(t, srv.URL, mode.batch)
			var wg sync.WaitGroup
			for _, rec := range recs {
				wg.Go(func() {
					if _, err := tg.Deliver(context.Background(), &target.Delivery{Record: rec, Attempt: 1}); err != nil {
						t.Errorf("deliver %s: %v", rec.ID(), err)
					}
				})
			}
			wg.Wait()
			for _, rec := range recs {
				d := s.last(rec.ID())
				if d == nil {
					t.Fatalf("%s: not received", rec.ID())
				}
				if want := rec.Value == nil; d.Tombstone != want {
					t.Errorf("%s (value %q, null %t): Tombstone = %t, want %t", rec.ID(), rec.Value, rec.Value == nil, d.Tombstone, want)
				}
				if len(rec.Value) == 0 && len(d.Body) != 0 {
					t.Errorf("%s: body %q, want none", rec.ID(), d.Body)
				}
			}
		})
	}
}
