package host

import (
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// PIDs returns the process ids of the pool's instances, for tests that kill
// or signal them.
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, 0, len(p.instances))
	for _, inst := range p.instances {
		pids = append(pids, inst.pid)
	}
	return pids
}

// RequestSize is the size on the wire of the Handle request of d.
func RequestSize(d *target.Delivery) int { return proto.Size(requestFromDelivery(d)) }

// Packed counts the packed messages the pool's streams sent, and the calls
// in them.
func (p *Pool) Packed() (messages, calls uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, inst := range p.instances {
		if inst.stream != nil {
			messages += inst.stream.packed.Load()
			calls += inst.stream.packedCalls.Load()
		}
	}
	return messages, calls
}
