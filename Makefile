# Hookbridge developer and CI entry points. See DESIGN.md §8 for the test tiers.

GO        ?= go
BIN       ?= bin/hookbridge

.PHONY: all build test vet unit demo e2e kafka-start kafka-stop clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/hookbridge

vet:
	$(GO) vet ./...

# Tiers 1 and 2: unit and in-process integration tests (only Go needed).
test: vet
	$(GO) test -race -count=1 ./...

demo:
	$(GO) run ./cmd/hookbridge demo

# Tier 3: real Apache Kafka (KRaft, from Maven jars) + go test ./test/...;
# the broker is stopped even when the tests fail.
e2e:
	bash test/e2e.sh

kafka-start:
	bash test/kafka/start.sh

kafka-stop:
	bash test/kafka/stop.sh

clean:
	rm -rf bin
